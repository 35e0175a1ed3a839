"""The real outcome table for the controller (issue 3, part b), from the embedded model.

Runs a fixed sample of train questions (for fitting) and of dev questions (for evaluation) at a grid of
budget points with the plain fixed policy, and appends each scored row to an outcome JSONL that
``benchmarks/controller.py --real-table`` and ``benchmarks/difficulty_auc.py`` read. Rows that
``benchmarks/answer_quality.py --log`` already measured at a grid point (same questions, same model,
same policy) are reused, not rerun. Interrupted, it continues where it stopped.

    python benchmarks/outcome_sweep.py --n-train 40 --n-dev 60 --points 128x1,256x2,512x3,1024x4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from shared_datasets import DATASETS

from leadline import Researcher, Settings
from leadline.evals.datasets import load_questions, sample
from leadline.evals.outcomes import OutcomeRow
from leadline.evals.sweep import parse_points, run_sweep


def reuse_answer_quality(log: Path, out: Path, points: list[tuple[int, int]], model: str) -> int:
    """Copy rows of the answer-quality log that sit on a grid point into the outcome file."""
    if not log.exists():
        return 0
    have = {(r["question_id"], r["tokens"], r["searches"]) for r in map(json.loads, _lines(out))}
    added = 0
    with out.open("a", encoding="utf-8") as fh:
        for rec in map(json.loads, _lines(log)):
            point = (rec.get("budget_tokens"), rec.get("budget_searches"))
            if rec.get("model") != model or point not in points or (rec["id"], *point) in have:
                continue
            row = OutcomeRow(
                question_id=rec["id"],
                split="dev",
                question=rec["question"],
                tokens=point[0],
                searches=point[1],
                answer=rec["research"],
                em=rec["em_research"],
                f1=rec["f1_research"],
                recall=rec["recall"],
                spent_tokens=rec["tokens"],
                spent_searches=rec["searches"],
            )
            fh.write(json.dumps(row.to_json()) + "\n")
            added += 1
    return added


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


async def sweep(args: argparse.Namespace) -> None:
    points = parse_points(args.points)
    train = sample(
        load_questions(DATASETS / "multihop" / "questions.train.jsonl"), args.n_train, seed=args.seed
    )
    dev = sample(
        load_questions(DATASETS / "multihop" / "questions.dev.jsonl"), args.n_dev_sample, seed=args.seed
    )
    dev = dev[: args.n_dev]
    if args.dev_slice:
        start, stop = (int(x) for x in args.dev_slice.split(":"))
        dev = dev[start:stop]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.touch()
    reused = reuse_answer_quality(args.reuse, args.out, points, args.model) if args.only != "train" else 0
    print(f"reused {reused} rows from {args.reuse}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="leadline-sweep-") as tmp:
        settings = Settings.from_env(home=Path(tmp), model=args.model, seed=0)
        async with Researcher(settings) as researcher:
            count = 0

            def progress(row: OutcomeRow) -> None:
                nonlocal count
                count += 1
                print(
                    f"  {count}: {row.split} {row.question_id} {row.tokens}x{row.searches} "
                    f"f1={row.f1:.2f} spent={row.spent_tokens}t/{row.spent_searches}s",
                    file=sys.stderr,
                )

            for split, items in (("train", train), ("dev", dev)):
                if args.only in (None, split):
                    await run_sweep(researcher, items, points, args.out, split=split, on_row=progress)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-dev", type=int, default=60)
    parser.add_argument("--n-dev-sample", type=int, default=100, help="the answer-quality sample size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", default="128x1,256x2,512x3,1024x4")
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/outcomes.jsonl"))
    parser.add_argument("--dev-slice", default=None, help="START:STOP of the dev questions (parallel sweeps)")
    parser.add_argument("--only", choices=("train", "dev"), default=None, help="run one split only")
    parser.add_argument("--reuse", type=Path, default=Path("benchmarks/out/answer_quality.jsonl"))
    args = parser.parse_args()
    asyncio.run(sweep(args))


if __name__ == "__main__":
    main()
