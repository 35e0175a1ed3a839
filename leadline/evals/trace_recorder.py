"""Record anytime traces (:mod:`leadline.evals.traces`) by running the real loop, resumably.

A question's trace is one run of the loop at a generous budget under an *exploring* controller (a think
over every search's new sources, a search while queries are pending, until the budget is spent), with the
search backend and the model wrapped so that every search's results and every think step's notes are
logged. After the run, the "answer now" probe of each step is the loop's own answer step (the shipped
reader) over the sources and notes the run had at that step (greedy, with the answer's log-probability
when the engine gives one); its tokens are recorded as the probe's cost and charged to no policy. A step
that left the sources and notes as they were (a search that found nothing new) reuses the previous
probe at no cost: the greedy answer would be the same. The closed-book answer is recorded once. Traces
are appended to a JSONL file one question at a time; questions already there are skipped, so an
interrupted recording resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leadline.agent.nodes import search as search_node
from leadline.agent.nodes.answer import DEFAULT_READER, read_answer, shown_sources
from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.state import Evidence
from leadline.budgets.controller import Allocation, Decision, RunObservation
from leadline.budgets.fitted import TRACE_THINK_TOKENS
from leadline.budgets.ledger import Budget
from leadline.evals.closed_book import closed_book_answer
from leadline.evals.datasets import QAItem
from leadline.evals.traces import SCHEMA, Probe, Trace, TraceStep, score
from leadline.llm.base import Completion, GenerationParams, LLMClient, Message
from leadline.tools.base import SearchBackend, SearchResult

PROBE_TOKENS = 48
PROBE_SOURCES = 8
"""Sources the probe's answer call sees at most (the loop's default ``max_evidence``)."""
EVIDENCE_CHARS = 600


@dataclass
class _LoggedSearch:
    """A search backend that keeps every call's results, in order."""

    inner: SearchBackend
    calls: list[list[SearchResult]] = field(default_factory=list)
    name: str = ""
    follows_links: bool = False

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.follows_links = bool(getattr(self.inner, "follows_links", False))

    async def search(self, query: str, *, k: int = 5, links: int = 0) -> list[SearchResult]:
        more = {"links": links} if links else {}
        results = await self.inner.search(query, k=k, **more)
        self.calls.append(list(results))
        return results

    async def read(self, result: SearchResult) -> Any:
        return await self.inner.read(result)  # type: ignore[attr-defined]

    async def aclose(self) -> None:  # the wrapped backend belongs to its owner
        return None


@dataclass
class _LoggedLLM:
    """A model client that keeps the notes of every think step (the loop's think prompt asks for them)."""

    inner: LLMClient
    notes: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        completion = await self.inner.chat(messages, params)
        if messages and '"next_query"' in messages[-1].content:
            parsed = parse_json_object(completion.text) or {}
            known = as_text(parsed.get("known")) or completion.text.strip()[:300]
            so_far = as_text(parsed.get("answer_so_far"))
            self.notes.append(known + (f" (answer so far: {so_far})" if so_far else ""))
        return completion

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        return await self.inner.complete(prompt, params)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        return None


@dataclass
class ExploringController:
    """Spend the whole budget on evidence and reasoning, recording what the controller could see."""

    think_tokens: int = TRACE_THINK_TOKENS
    observations: list[RunObservation] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    _evidence_at_think: int = -1

    def assess(self, question: str, budget: Budget) -> Allocation:
        """Allocate the whole trace budget: a trace explores past where any policy would stop."""
        return Allocation(
            tokens=budget.tokens,
            searches=budget.searches,
            think_tokens=self.think_tokens,
            reason="trace recording: spend the budget",
        )

    def decide(self, observation: RunObservation) -> Decision:
        """Alternate searches and thinks until the budget is spent, whatever the evidence says: a search
        that brought new sources is followed by a think over them (whose next query the next search
        takes), so a trace sees both axes and the answer converge or not from think to think."""
        o = observation
        self.observations.append(o)
        if o.thinks_done and self._evidence_at_think < 0:
            self._evidence_at_think = o.evidence_count
        can_think = o.tokens_left > self.think_tokens + 64 and o.evidence_count != self._evidence_at_think
        can_search = o.searches_left > 0 and (o.searches_done == 0 or o.pending_queries > 0)
        if can_think and (not can_search or (self.actions and self.actions[-1] == "search")):
            action, self._evidence_at_think = "think", o.evidence_count
        elif can_search:
            action = "search"
        else:
            action = "answer"
        self.actions.append(action)
        return Decision(action, "trace recording")  # type: ignore[arg-type]

    def finish(self, *, tokens_unspent: int, searches_unspent: int) -> None:
        """Nothing to hand back: a trace has no batch pool."""
        return None


def _evidence(calls: Sequence[Sequence[SearchResult]], k: int, links: int = 0) -> list[Evidence]:
    """The sources the loop read after these searches, as the search node reads them
    (:func:`leadline.agent.nodes.search.sources_read`: a backfilled call asked for more than ``k``, a
    call that follows links brings linked passages after its own)."""
    seen: dict[str, Evidence] = {}
    for results in calls:
        new, linked = search_node.sources_read(results, seen, k, links)
        for r in [*new, *linked]:
            if r.doc_id not in seen:
                seen[r.doc_id] = Evidence(
                    n=len(seen) + 1,
                    doc_id=r.doc_id,
                    title=r.title,
                    url=r.url or "",
                    text=r.text or r.snippet,
                    query="",
                    score=float(r.score or 0.0),
                    rank=int(r.rank or 0),
                )
    return list(seen.values())


async def _probe(
    llm: LLMClient,
    question: str,
    evidence: list[Evidence],
    notes: list[str],
    memo: dict[str, Completion],
) -> tuple[Probe, Any]:
    """The answer the run would give now: the shipped reader of the model over the sources and notes.

    ``memo`` holds the trace's earlier greedy calls by their request: a comparison's side call over the
    same sources as at an earlier step is not run again, but its tokens still count in the probe's cost
    (the loop would spend them; its seconds do not).
    """
    completions: list[Completion] = []

    async def chat(messages: list[Message], params: GenerationParams) -> Completion:
        if params.temperature != 0.0:  # a sampled call is asked every time
            completions.append(await llm.chat(messages, params))
            return completions[-1]
        key = json.dumps([[m.to_dict() for m in messages], asdict(params)], sort_keys=True)
        done = memo.get(key)
        if done is None:
            done = memo[key] = await llm.chat(messages, params)
        completions.append(done)
        return done

    reader = DEFAULT_READER
    shown = shown_sources(evidence, question, notes, reader, PROBE_SOURCES)
    started = time.monotonic()
    got = await read_answer(
        chat, question, shown, notes, opts=reader, max_chars=EVIDENCE_CHARS, budget_line=""
    )
    seconds = round(time.monotonic() - started, 3)
    cost = sum(int(c.usage.total_tokens) for c in completions)
    # the answer call is the reader's last (a comparison's side calls come before it)
    last = completions[-1].choices if completions else ()
    lp = last[0].field_logprob("answer") if last else None
    return Probe(answer=got.text, cost=cost, seconds=seconds), lp


async def record_trace(
    researcher: Any, item: QAItem, *, budget: Budget, split: str, model: str | None = None
) -> Trace:
    """Run ``item`` through the loop of ``researcher`` (a ``leadline.api.Researcher``); probe each step."""
    from leadline.api import Researcher

    search = _LoggedSearch(researcher.search_backend)
    links = researcher.search_links if search.follows_links else 0
    llm = _LoggedLLM(researcher.llm)
    ctl = ExploringController()
    runner = Researcher(
        researcher.settings,
        llm=llm,
        search=search,
        reader=researcher._reader,
        store=researcher.store,
        controller=ctl,
        search_k=researcher.search_k,
        search_links=researcher.search_links,
    )
    started = time.monotonic()
    await runner.aresearch(item.question, budget=budget)
    run_seconds = round(time.monotonic() - started, 3)
    lam = float(budget.search_cost_tokens if budget.search_cost_tokens is not None else 500.0)
    started = time.monotonic()
    closed = await closed_book_answer(researcher.llm, item.question, max_tokens=PROBE_TOKENS)
    closed_probe = Probe(
        answer=_clean(closed.answer),
        cost=int(closed.usage.total_tokens),
        seconds=round(time.monotonic() - started, 3),
    )
    steps: list[TraceStep] = []
    previous = closed_probe.answer
    think_tokens = 0
    last_key: tuple[tuple[str, ...], int] | None = None
    last_lp: float | None = None
    memo: dict[str, Completion] = {}
    for j, action in enumerate(ctl.actions):
        if action == "answer" or j + 1 >= len(ctl.observations):
            break
        after = ctl.observations[j + 1]
        if action == "think":
            think_tokens += ctl.think_tokens
        calls = search.calls[: after.searches_done]
        evidence = _evidence(calls, researcher.search_k, links)
        key = (tuple(e["doc_id"] for e in evidence), after.thinks_done)
        if steps and key == last_key:  # the same sources and notes: the greedy probe would say the same
            probe, lp = Probe(answer=steps[-1].probe.answer, cost=0, seconds=0.0), last_lp
        else:
            probe, lp = await _probe(
                researcher.llm, item.question, evidence, llm.notes[: after.thinks_done], memo
            )
        last_key, last_lp = key, lp
        own = search_node.own_results(calls[-1]) if calls else []
        scores = [float(r.score or 0.0) for r in own[: researcher.search_k]]
        signals: dict[str, float | None] = {
            "new_docs": float(after.new_docs_last_search) if action == "search" else 0.0,
            "score_spread": (max(scores) - sum(scores) / len(scores)) if scores else None,
            "evidence": float(after.evidence_count),
            "answer_logprob": lp,
            "sample_agreement": None,
            "bridge_entities": float(len(after.bridge_entities)),
            "probe_agrees": float(bool(probe.answer) and _norm(probe.answer) == _norm(previous)),
        }
        previous = probe.answer
        steps.append(
            TraceStep(
                step=len(steps) + 1,
                action=action,
                tokens=think_tokens,
                searches=after.searches_done,
                signals=signals,
                probe=probe,
            )
        )
    trace = Trace(
        question_id=item.id,
        question=item.question,
        split=split,
        model=model or researcher.llm.model_name,
        gold=tuple(item.answers),
        closed_book=closed_probe,
        steps=tuple(steps),
        search_cost_tokens=lam,
        schema=SCHEMA,
        run_seconds=run_seconds,
        search_backfill=search_node.BACKFILL,
        search_links=links,
    )
    return score(trace)


def _clean(text: str) -> str:
    parsed = parse_json_object(text)
    return as_text(parsed.get("answer")) if parsed else text.strip()[:200]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def recorded_ids(path: Path) -> set[str]:
    """The question ids a traces file holds already; a torn last line (a recording killed mid-write) is
    cut off first, so that question is recorded again and the next trace starts on a line of its own."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        keep = raw[: raw.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(keep))
        raw = keep
    done: set[str] = set()
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            done.add(str(json.loads(line)["question_id"]))
        except (ValueError, KeyError, TypeError):
            continue  # not a trace: read_traces reports it
    return done


async def record_traces(
    researcher: Any,
    items: Sequence[QAItem],
    out: str | Path,
    *,
    budget: Budget,
    split: str,
    on_trace: Callable[[Trace], None] | None = None,
) -> int:
    """Append a trace per question not yet in ``out``; returns how many were recorded now.

    Resumable: a question already in the file (whatever its split) is never recorded again, and each
    trace is appended and flushed as soon as it is complete, so a killed recording loses at most the
    question it was on.
    """
    path = Path(out)
    done = recorded_ids(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recorded = 0
    for item in items:
        if item.id in done:
            continue
        trace = await record_trace(researcher, item, budget=budget, split=split)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(trace.to_dict()) + "\n")
            fh.flush()
        done.add(item.id)
        recorded += 1
        if on_trace is not None:
            on_trace(trace)
    return recorded


def record_traces_cli(
    questions_file: Path,
    out: Path,
    points: str,
    split: str,
    limit: int | None,
    settings: Any,
    echo: Callable[[str], Any],
    *,
    sample: int | None = None,
) -> int:
    """``leadline tune --traces OUT``: record traces of a question file at the last budget point."""
    import asyncio

    from leadline.api import Researcher
    from leadline.evals.datasets import load_questions, pick_questions
    from leadline.evals.sweep import parse_points

    grid = parse_points(points)
    tokens, searches = grid[-1][0], grid[-1][1]
    items = pick_questions(load_questions(questions_file), limit=limit, sample=sample)
    budget = Budget(
        tokens=int(tokens), searches=int(searches), steps=4 * int(searches) + 12, search_cost_tokens=500
    )
    done = recorded_ids(Path(out))
    todo = sum(1 for item in items if item.id not in done)
    echo(f"{len(items)} {split} questions at {tokens} tokens x {searches} searches: {todo} traces to record")
    count = [len(items) - todo]

    def show(t: Trace) -> None:
        count[0] += 1
        probes = sum(s.probe.seconds or 0.0 for s in t.steps) + (t.closed_book.seconds or 0.0)
        echo(
            f"[{count[0]}/{len(items)}] {t.question_id}: {len(t.steps)} steps, "
            f"run {t.run_seconds or 0:.1f} s, "
            f"probes {probes:.1f} s; probe F1 " + " ".join(f"{t.f1(i):.2f}" for i in range(len(t.steps) + 1))
        )

    async def go() -> int:
        async with Researcher(settings) as researcher:
            return await record_traces(researcher, items, out, budget=budget, split=split, on_trace=show)

    n = asyncio.run(go())
    echo(f"{n} traces recorded in {out}")
    return n


__all__ = ["ExploringController", "record_trace", "record_traces", "record_traces_cli", "recorded_ids"]
