"""Could a policy answer some questions closed book? A screen of closed-book confidence signals on traces.

Issue 11's point 4 asks for the best fixed budget's dev F1 at no more than half its compute. When the
best fixed budget is one search (the default 1.5B on its dev traces since the ``compare`` reader), a
policy that always searches first cannot use less; only one that answers some questions closed book can.
That needs a signal, before any search, of which questions a search would not help. This script records
two such signals for each traced question and scores the policy "answer closed book when the signal is
at least θ, else search once" on the traces: θ chosen on train, read on dev (and every θ on dev, as an
upper bound a choice on train cannot beat).

- ``agreement``: the share of a few sampled closed-book answers (T = 0.7) equal to the trace's greedy one.
- ``logprob``: the mean log-probability of the tokens that spell the greedy closed-book answer (the
  ``answer`` value of its JSON, :meth:`~leadline.llm.base.Choice.field_logprob`; the model is loaded
  with ``logits_all`` for this, and the committed traces have none).

    python benchmarks/closed_book_signal.py record --model qwen2.5-1.5b-instruct  # resumable, ~6 s each
    python benchmarks/closed_book_signal.py record --signal logprob                # resumable, ~2 s each
    python benchmarks/closed_book_signal.py [--signal logprob]                     # the screen

Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from leadline import Settings
from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.prompts import ANSWER_SCHEMA, closed_book_messages
from leadline.config import DEFAULT_MODEL
from leadline.evals.closed_book import answer_text
from leadline.evals.metrics import normalize_answer
from leadline.evals.trace_recorder import PROBE_TOKENS
from leadline.evals.traces import Trace, read_traces
from leadline.llm.base import GenerationParams, LLMClient
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.llm.models import resolve_model_file
from leadline.wiring import make_llm

RowMaker = Callable[[LLMClient, Trace], Awaitable[dict[str, Any]]]
"""Records one traced question's signal: the fields of its row (besides the question's id and split)."""

DATA = Path(__file__).parent / "data"
SAMPLES = 4
THRESHOLDS = (0.25, 0.5, 0.75, 1.0)
SIGNALS = ("agreement", "logprob")
LOGPROB_CTX = 1024
"""Context of the ``logits_all`` engine: a closed-book prompt and its answer fit; the logits it keeps
(n_ctx × vocabulary floats) stay near 0.6 GB for the 1.5B's 151,936-token vocabulary."""


def _paths(model: str, signal: str = "agreement") -> tuple[Path, Path]:
    return DATA / f"traces-{model}.jsonl", DATA / f"closed_book_{signal}.{model}.jsonl"


async def _record(model: str, signal: str, llm: LLMClient, row: RowMaker) -> None:
    """Append to the signal's file, for each traced question not yet in it, the row ``row`` makes."""
    traces_path, out = _paths(model, signal)
    done = {r["question_id"] for r in _rows(out)} if out.exists() else set()
    try:
        for t in read_traces(traces_path).traces:
            if t.question_id in done:
                continue
            fields = await row(llm, t)
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"question_id": t.question_id, "split": t.split, **fields}) + "\n")
            print(f"{t.question_id}: {signal} {fields[signal]}", flush=True)
    finally:
        await llm.aclose()


async def record_logprob(model: str, home: str | None) -> None:
    """The greedy closed-book answer's token log-probabilities for each traced question (the recorder's
    prompt and limits; the engine loaded with ``logits_all``)."""
    settings = Settings.from_env(home=Path(home) if home else None, model=model, seed=0)
    path = resolve_model_file(settings.model, settings.models_dir, n_ctx=LOGPROB_CTX)
    llm = LlamaCppEngine(
        path, name=settings.model, n_ctx=LOGPROB_CTX, n_threads=settings.n_threads, logits_all=True
    )
    params = GenerationParams(max_tokens=PROBE_TOKENS, json_schema=ANSWER_SCHEMA, logprobs=True)

    async def row(llm: LLMClient, t: Trace) -> dict[str, Any]:
        choice = (await llm.chat(closed_book_messages(t.question), params)).choices[0]
        answer = answer_text(choice.text)
        value = choice.field_logprob("answer")
        return {
            "answer": answer,
            "same_as_trace": normalize_answer(answer) == normalize_answer(t.closed_book.answer),
            "tokens": [
                [tok, round(lp, 5)]
                for tok, lp in zip(choice.tokens or (), choice.logprobs or (), strict=True)
            ],
            "logprob": round(value, 5) if value is not None else None,
        }

    await _record(model, "logprob", llm, row)


async def record(model: str, home: str | None, samples: int) -> None:
    """``samples`` closed-book answers (T = 0.7) for each traced question, and their agreement with the
    trace's greedy one."""
    llm = make_llm(Settings.from_env(home=Path(home) if home else None, model=model, seed=0))
    params = GenerationParams(
        max_tokens=PROBE_TOKENS, json_schema=ANSWER_SCHEMA, n=samples, temperature=0.7, seed=1
    )

    async def row(llm: LLMClient, t: Trace) -> dict[str, Any]:
        completion = await llm.chat(closed_book_messages(t.question), params)
        answers = []
        for choice in completion.choices:
            obj = parse_json_object(choice.text)
            answers.append(as_text(obj.get("answer")) if obj else choice.text.strip())
        greedy = normalize_answer(t.closed_book.answer)
        return {
            "samples": answers,
            "agreement": sum(normalize_answer(a) == greedy for a in answers) / len(answers),
        }

    await _record(model, "agreement", llm, row)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


SEARCH_ALWAYS = 2.0
"""A threshold no agreement reaches: one search on every question (the dev traces' best fixed budget)."""


def _auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def _policy(traces: list[Trace], signal: dict[str, float], theta: float) -> tuple[float, float, int]:
    """F1 and mean compute of "closed book when the signal is at least theta, else one search"."""
    closed = [t for t in traces if signal[t.question_id] >= theta]
    searched = [t for t in traces if signal[t.question_id] < theta]
    f1 = sum(float(t.closed_book.f1 or 0.0) for t in closed)
    f1 += sum(float(t.steps[0].probe.f1 or 0.0) for t in searched)
    compute = sum(t.cost(1) for t in searched)
    return f1 / len(traces), compute / len(traces), len(closed)


def _load_signal(model: str, signal: str) -> dict[str, float]:
    """Each question's value of the signal (its file's field of the same name)."""
    _, data = _paths(model, signal)
    return {r["question_id"]: float(r[signal]) for r in _rows(data) if r.get(signal) is not None}


def _thresholds(signal: str, train_values: list[float]) -> tuple[float, ...]:
    """The thresholds screened: the agreement's four levels, or the train deciles of the log-probability
    (chosen from train alone, so dev reads them as they are)."""
    if signal == "agreement":
        return THRESHOLDS
    qs = statistics.quantiles(train_values, n=10)
    return tuple(sorted(set(qs)))


def screen(model: str, signal: str, out: dict[str, Any]) -> None:
    traces_path, _ = _paths(model, signal)
    values = _load_signal(model, signal)
    traces = [t for t in read_traces(traces_path).traces if t.question_id in values and t.steps]
    by_split = {s: [t for t in traces if t.split == s] for s in ("train", "dev")}
    thresholds = _thresholds(signal, [values[t.question_id] for t in by_split["train"]])
    rows = {
        s: {th: _policy(ts, values, th) for th in (*thresholds, SEARCH_ALWAYS)} for s, ts in by_split.items()
    }
    best_train = max(thresholds, key=lambda th: rows["train"][th][0])
    half_train = rows["train"][SEARCH_ALWAYS][1] / 2
    fits_half = [th for th in thresholds if rows["train"][th][1] <= half_train]
    half_choice = max(fits_half, key=lambda th: rows["train"][th][0]) if fits_half else None
    for split, ts in by_split.items():
        one = rows[split][SEARCH_ALWAYS]
        print(f"{split}: {len(ts)} questions; one search on every question: F1 {one[0]:.3f} at {one[1]:.0f}")
        cb = {t.question_id: float(t.closed_book.f1 or 0.0) for t in ts}
        s1 = {t.question_id: float(t.steps[0].probe.f1 or 0.0) for t in ts}
        a_right = _auc([values[q] for q in cb if cb[q] >= 0.5], [values[q] for q in cb if cb[q] < 0.5])
        a_help = _auc([values[q] for q in cb if s1[q] <= cb[q]], [values[q] for q in cb if s1[q] > cb[q]])
        print(
            f"  AUC of {signal} for 'the closed-book answer is right' {a_right:.3f}, "
            f"for 'a search does not beat it' {a_help:.3f}"
        )
        for th in thresholds:
            f1, compute, n = rows[split][th]
            choices = (("best F1 on train", best_train), ("best on train within half", half_choice))
            marks = [m for m, c in choices if th == c]
            print(
                f"  closed book when {signal} >= {th:.3f}: {n:2d} closed book,",
                f"F1 {f1:.3f} at {compute:.0f}",
                f"<- {', '.join(marks)}" if marks else "",
            )
        out[f"{split}_auc_search_not_better"] = a_help
    dev = rows["dev"]
    f1_best, compute_best, _ = dev[SEARCH_ALWAYS]
    out["dev_f1_one_search"] = f1_best
    out["dev_f1_train_theta"], out["dev_compute_train_theta"], _ = dev[best_train]
    if signal != "agreement":
        nan = (float("nan"), float("nan"), 0)
        out["dev_f1_train_half_theta"], out["dev_compute_train_half_theta"], _ = (
            dev[half_choice] if half_choice is not None else nan
        )
    out["dev_best_f1_at_half_compute"] = max(
        (dev[th][0] for th in thresholds if dev[th][1] <= compute_best / 2), default=float("nan")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="screen", choices=["screen", "record"])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--home", default=None, help="leadline home (models, runs)")
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--signal", default="agreement", choices=SIGNALS)
    args = parser.parse_args(argv)
    if args.command == "record":
        if args.signal == "logprob":
            asyncio.run(record_logprob(args.model, args.home))
        else:
            asyncio.run(record(args.model, args.home, args.samples))
        return 0
    out: dict[str, Any] = {}
    screen(args.model, args.signal, out)
    print(" ".join(f"{k}={v:.4f}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
