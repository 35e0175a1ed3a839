"""Answer quality of the research loop against closed-book answering, side by side in one run.

On a fixed sample of dev questions of ../shared/datasets/multihop (seeded), with the demo index, for the
default model (and a smaller sample for each other packaged model): exact match, token F1, recall of the
supporting passages, tokens and searches per question and seconds per question, for closed-book
answering (no search) and for the research loop. Ends with one line of key=value figures for the default
model. Timings depend on what else runs on the machine: run it alone for clean seconds.

    python benchmarks/answer_quality.py --n 100 --n-other 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared_datasets import DATASETS

from leadline import Budget, LeadlineError, Researcher, Settings
from leadline.agent.nodes import answer as answer_module
from leadline.agent.nodes.answer import ReaderOptions, read_answer, shown_sources
from leadline.agent.nodes.common import budget_line
from leadline.config import DEFAULT_MODEL
from leadline.evals.closed_book import closed_book_answer
from leadline.evals.datasets import QAItem, load_questions, sample
from leadline.evals.metrics import exact_match, passage_recall, token_f1
from leadline.llm.models import PACKAGED_MODELS
from leadline.wiring import make_llm, make_search


@dataclass
class Tally:
    em: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    prompt_tokens: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(
        self,
        item: QAItem,
        answer: str,
        retrieved: list[str],
        tokens: int,
        prompt: int,
        searches: int,
        seconds: float,
    ) -> None:
        self.em.append(exact_match(answer, item.answers))
        self.f1.append(token_f1(answer, item.answers))
        self.recall.append(passage_recall(retrieved, item.supporting_doc_ids) if searches else 0.0)
        self.tokens.append(tokens)
        self.prompt_tokens.append(prompt)
        self.searches.append(searches)
        self.seconds.append(seconds)

    def add_logged(self, row: dict, prefix: str) -> None:
        """Re-add a question measured by an earlier, interrupted run (from --progress-log)."""
        self.em.append(row[f"em_{prefix}"])
        self.f1.append(row[f"f1_{prefix}"])
        self.recall.append(row["recall"] if prefix == "research" else 0.0)
        self.tokens.append(row["tokens"] if prefix == "research" else row.get("closed_tokens", 0))
        self.prompt_tokens.append(
            row["prompt_tokens"] if prefix == "research" else row.get("closed_prompt_tokens", 0)
        )
        self.searches.append(row["searches"] if prefix == "research" else 0)
        self.seconds.append(row["seconds"] if prefix == "research" else row.get("closed_seconds", 0.0))

    def mean(self, name: str) -> float:
        values = getattr(self, name)
        return statistics.fmean(values) if values else float("nan")


def pair_with_reader(llm: Any, paired: ReaderOptions, into: dict[str, Any]) -> None:
    """Make the loop's answer step also answer with the ``paired`` reader over the very same sources
    and notes (outside the budget, before the real answer so llama.cpp's cached prefix is reused)."""
    import leadline.agent.graph as graph_module

    real_answer = answer_module.answer

    async def answer_twice(state: Any, runtime: Any) -> dict[str, Any]:
        ctx = runtime.context
        shown = shown_sources(state["evidence"], state["question"], state["notes"], paired, ctx.max_evidence)
        into.clear()
        try:
            got = await read_answer(
                llm.chat,
                state["question"],
                shown,
                state["notes"],
                opts=paired,
                max_chars=ctx.evidence_chars,
                budget_line=budget_line(state, ctx),
            )
            into["answer"] = got.text
        except LeadlineError as exc:
            into["answer"] = f"(failed: {exc})"
        return await real_answer(state, runtime)

    graph_module.answer = answer_twice  # type: ignore[assignment]


async def evaluate(
    model: str,
    items: list[QAItem],
    budget: Budget,
    home: Path,
    log: list[dict],
    paired: ReaderOptions | None = None,
    progress_log: Path | None = None,
    done: dict[tuple[str, str], dict] | None = None,
) -> dict:
    settings = Settings.from_env(home=home, model=model, seed=0)
    closed, loop, other = Tally(), Tally(), Tally()
    llm = make_llm(settings)
    pair: dict[str, Any] = {}
    if paired is not None:
        pair_with_reader(llm, paired, pair)
    search, reader = make_search(settings)
    researcher = Researcher(settings, llm=llm, search=search, reader=reader)
    try:
        for i, item in enumerate(items, 1):
            earlier = (done or {}).get((model, item.id))
            if earlier is not None:  # measured by an interrupted run of the same command: keep it
                closed.add_logged(earlier, "closed")
                loop.add_logged(earlier, "research")
                if paired is not None:
                    other.em.append(earlier.get("em_paired", 0.0))
                    other.f1.append(earlier.get("f1_paired", 0.0))
                log.append(earlier)
                continue
            t0 = time.perf_counter()
            cb = await closed_book_answer(llm, item.question)
            closed.add(
                item,
                cb.answer,
                [],
                cb.usage.completion_tokens,
                cb.usage.prompt_tokens,
                0,
                time.perf_counter() - t0,
            )
            t0 = time.perf_counter()
            result = await researcher.aresearch(item.question, budget=budget)
            seconds = time.perf_counter() - t0
            steps = researcher.store.list_steps(result.run_id)
            retrieved = [r["doc_id"] for s in steps if s.kind == "search" for r in s.response["results"]]
            loop.add(
                item,
                result.answer,
                retrieved,
                result.spend.tokens,
                result.spend.prompt_tokens,
                result.spend.searches,
                seconds,
            )
            if paired is not None:
                other.add(item, pair.get("answer", ""), retrieved, 0, 0, result.spend.searches, 0.0)
            log.append(
                {
                    **(
                        {
                            "paired_reader": pair.get("answer", ""),
                            "f1_paired": other.f1[-1],
                            "em_paired": other.em[-1],
                        }
                        if paired is not None
                        else {}
                    ),
                    "model": model,
                    "id": item.id,
                    "gold": item.answers,
                    "closed": cb.answer,
                    "research": result.answer,
                    "question": item.question,
                    "em_closed": closed.em[-1],
                    "closed_tokens": cb.usage.completion_tokens,
                    "closed_prompt_tokens": cb.usage.prompt_tokens,
                    "closed_seconds": closed.seconds[-1],
                    "f1_closed": closed.f1[-1],
                    "em_research": loop.em[-1],
                    "unsure": result.unsure,
                    "f1_research": loop.f1[-1],
                    "recall": loop.recall[-1],
                    "tokens": result.spend.tokens,
                    "prompt_tokens": result.spend.prompt_tokens,
                    "searches": result.spend.searches,
                    "budget_tokens": budget.tokens,
                    "budget_searches": budget.searches,
                    "seconds": seconds,
                }
            )
            if progress_log is not None:  # per question, so an interrupted run keeps what it measured
                with progress_log.open("a") as fh:
                    fh.write(json.dumps(log[-1]) + "\n")
            print(
                f"  [{model}] {i}/{len(items)} f1 closed {closed.mean('f1'):.3f} research "
                f"{loop.mean('f1'):.3f} recall {loop.mean('recall'):.3f}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        await researcher.aclose()
        await llm.aclose()
    return {"closed": closed, "research": loop, "paired": other}


def row(model: str, mode: str, t: Tally) -> str:
    return (
        f"| {model} | {mode} | {len(t.em)} | {t.mean('em'):.3f} | {t.mean('f1'):.3f} | "
        f"{t.mean('recall'):.3f} | {t.mean('tokens'):.0f} | {t.mean('prompt_tokens'):.0f} | "
        f"{t.mean('searches'):.2f} | {t.mean('seconds'):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=DATASETS / "multihop" / "questions.dev.jsonl")
    parser.add_argument("--n", type=int, default=100, help="questions for the default model")
    parser.add_argument("--n-other", type=int, default=30, help="questions for each other packaged model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-tokens", type=int, default=512)
    parser.add_argument("--budget-searches", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=None, help="models (default: all packaged)")
    parser.add_argument("--log", type=Path, default=None, help="write per-question JSONL here")
    parser.add_argument("--progress-log", type=Path, default=None, help="append each question's row here")
    parser.add_argument("--home", type=Path, default=None, help="leadline home (default: a temporary one)")
    parser.add_argument(
        "--paired-reader",
        default=None,
        help="also answer each question with this reader over the same sources (e.g. 'baseline')",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip questions already in --progress-log (an interrupted run of the same command)",
    )
    args = parser.parse_args()
    done: dict[tuple[str, str], dict] = {}
    if args.resume and args.progress_log and args.progress_log.exists():
        for line in args.progress_log.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["model"], r["id"])] = r

    items = sample(load_questions(args.questions), args.n, seed=args.seed)
    models = args.models or [DEFAULT_MODEL] + [m for m in PACKAGED_MODELS if m != DEFAULT_MODEL]
    budget = Budget(tokens=args.budget_tokens, searches=args.budget_searches)
    log: list[dict] = []
    results: dict[str, dict] = {}
    paired = ReaderOptions.parse(args.paired_reader) if args.paired_reader else None
    with tempfile.TemporaryDirectory(prefix="leadline-bench-") as tmp:
        home = args.home or Path(tmp)
        for model in models:
            n = args.n if model == models[0] else min(args.n_other, len(items))
            results[model] = asyncio.run(
                evaluate(model, items[:n], budget, home, log, paired, args.progress_log, done)
            )
            if args.log:  # after each model, so a long run keeps what it measured
                args.log.write_text("".join(json.dumps(x) + "\n" for x in log))

    print(
        f"\nBudget per question: {budget.tokens} generated tokens, {budget.searches} searches; "
        f"sample of {args.n} from {args.questions.name} (seed {args.seed})\n"
    )
    print(
        "| model | mode | n | EM | F1 | passage recall | gen tokens/q | prompt tokens/q | searches/q | s/q |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, r in results.items():
        print(row(model, "closed-book", r["closed"]))
        print(row(model, "research", r["research"]))
        if paired is not None:
            print(row(model, f"research, reader {args.paired_reader}", r["paired"]))
    if args.log:
        args.log.write_text("".join(json.dumps(x) + "\n" for x in log))
    d = results[models[0]]
    figures = {
        "model": models[0],
        "n": len(d["research"].em),
        "em_research": f"{d['research'].mean('em'):.3f}",
        "em_closed": f"{d['closed'].mean('em'):.3f}",
        "f1_research": f"{d['research'].mean('f1'):.3f}",
        "f1_closed": f"{d['closed'].mean('f1'):.3f}",
        "recall": f"{d['research'].mean('recall'):.3f}",
        "tokens_per_q": f"{d['research'].mean('tokens'):.0f}",
        "searches_per_q": f"{d['research'].mean('searches'):.2f}",
        "seconds_per_q_research": f"{d['research'].mean('seconds'):.1f}",
        "seconds_per_q_closed": f"{d['closed'].mean('seconds'):.1f}",
    }
    if paired is not None:
        figures["f1_paired_reader"] = f"{d['paired'].mean('f1'):.3f}"
        figures["em_paired_reader"] = f"{d['paired'].mean('em'):.3f}"
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
