"""Do report sentences say what their cited passage says? Measured on dev questions in report mode.

For each question the research loop runs in report mode (fixed policy; 1024 tokens x 3 searches by
default, since the report needs room after the answer). Every sentence of the report body that carries
an ``[n]`` citation is checked against the passage(s) it cites with
:func:`leadline.agent.reader.claim_support` (the share of its content words, stemmed, that the passage
contains; 0 when one of its numbers is missing). A sentence counts as supported at 0.75 (the threshold
the report step uses to keep a claim) and, stricter, at 1.0. The model's claims as it wrote them,
before the report step checked them, are scored the same way, so the check's own effect is visible.
Every sentence is written to the log for reading by hand.

    python benchmarks/report_support.py --n 20 --log benchmarks/data/report_support.dev.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shared_datasets import DATASETS

from leadline import Budget, Researcher, Settings
from leadline.agent.parsing import parse_json_object
from leadline.agent.reader import claim_support
from leadline.config import DEFAULT_MODEL
from leadline.evals.datasets import load_questions, sample
from leadline.wiring import make_llm, make_search

_CITED = re.compile(r"\[(\d+)\]")


def cited_sentences(report: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers) for each line of the report body that cites something."""
    body = report.split("## Sources", 1)[0]
    out = []
    for line in body.splitlines():
        line = line.strip().removeprefix("- ").strip()
        numbers = [int(n) for n in _CITED.findall(line)]
        if numbers and not line.startswith("#"):
            out.append((_CITED.sub("", line).replace("**Answer:**", "").strip(), numbers))
    return out


def score(sentence: str, numbers: list[int], passages: dict[int, str]) -> float:
    return max((claim_support(sentence, passages.get(n, "")) for n in numbers), default=0.0)


async def run(args: argparse.Namespace) -> None:
    import leadline.agent.graph as graph_module
    from leadline.agent.nodes import report as report_module

    seen_evidence: dict[int, str] = {}
    real_report = report_module.report

    async def recording_report(state: Any, runtime: Any) -> dict[str, Any]:
        seen_evidence.clear()
        seen_evidence.update({int(e["n"]): e["title"] + ". " + e["text"] for e in state["evidence"]})
        return await real_report(state, runtime)

    graph_module.report = recording_report  # type: ignore[assignment]
    items = sample(load_questions(args.questions), args.n_sample, seed=args.seed)[: args.n]
    with tempfile.TemporaryDirectory(prefix="leadline-report-") as tmp:
        settings = Settings.from_env(home=args.home or Path(tmp), model=args.model, seed=0)
        llm = make_llm(settings)
        search, reader = make_search(settings)
        researcher = Researcher(settings, llm=llm, search=search, reader=reader)
        budget = Budget(tokens=args.budget_tokens, searches=args.budget_searches)
        rows: list[dict[str, Any]] = []
        try:
            for i, item in enumerate(items, 1):
                t0 = time.perf_counter()
                result = await researcher.aresearch(item.question, budget=budget, mode="report")
                seconds = time.perf_counter() - t0
                steps = researcher.store.list_steps(result.run_id)
                passages = dict(seen_evidence)
                raw_claims: list[tuple[str, int]] = []
                for s in steps:
                    if s.node == "report" and s.response.get("choices"):
                        parsed = parse_json_object(s.response["choices"][0]["text"]) or {}
                        for f in parsed.get("findings") or []:
                            if isinstance(f, dict) and str(f.get("source", "")).isdigit():
                                raw_claims.append((str(f.get("claim", "")), int(f["source"])))
                sentences = cited_sentences(result.report or "")
                for sentence, numbers in sentences:
                    rows.append(
                        {
                            "id": item.id,
                            "question": item.question,
                            "kind": "report",
                            "sentence": sentence,
                            "cited": numbers,
                            "support": round(score(sentence, numbers, passages), 3),
                            "passage": " | ".join(passages.get(n, "")[:400] for n in numbers),
                        }
                    )
                for claim, n in raw_claims:
                    rows.append(
                        {
                            "id": item.id,
                            "question": item.question,
                            "kind": "model_claim",
                            "sentence": claim,
                            "cited": [n],
                            "support": round(score(claim, [n], passages), 3),
                            "passage": passages.get(n, "")[:400],
                        }
                    )
                uncovered = "do not cover" in (result.report or "") or "do not clearly answer" in (
                    result.report or ""
                )
                rows.append(
                    {"id": item.id, "kind": "run", "seconds": round(seconds, 1), "says_uncovered": uncovered}
                )
                done = [r for r in rows if r["kind"] == "report"]
                share = statistics.fmean(r["support"] >= 0.75 for r in done) if done else float("nan")
                print(
                    f"  {i}/{len(items)} cited sentences {len(done)} supported {share:.3f}", file=sys.stderr
                )
                if args.log:
                    args.log.write_text("".join(json.dumps(r) + "\n" for r in rows))
        finally:
            await researcher.aclose()
            await llm.aclose()
    report = [r for r in rows if r["kind"] == "report"]
    claims = [r for r in rows if r["kind"] == "model_claim"]
    runs = [r for r in rows if r["kind"] == "run"]

    def share(xs: list[dict[str, Any]], t: float) -> str:
        return f"{statistics.fmean(r['support'] >= t for r in xs):.3f}" if xs else "nan"

    seconds = statistics.fmean(r["seconds"] for r in runs) if runs else float("nan")
    print(
        f"questions={len(runs)} report_sentences={len(report)} supported_075={share(report, 0.75)} "
        f"supported_100={share(report, 1.0)} model_claims={len(claims)} "
        f"claims_supported_075={share(claims, 0.75)} says_uncovered={sum(r['says_uncovered'] for r in runs)} "
        f"seconds_per_q={seconds:.1f} model={args.model}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=DATASETS / "multihop" / "questions.dev.jsonl")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--n-sample", type=int, default=100, help="the answer-quality sample they come from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--budget-tokens", type=int, default=1024)
    parser.add_argument("--budget-searches", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--log", type=Path, default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
