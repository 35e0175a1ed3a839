"""Unattended report generation: write one cited Markdown report per question in a file.

    python examples/reports.py questions.txt out/ [--tokens 1500 --searches 4]

Each line of questions.txt is a question. Every run is recorded in the run database, so an interrupted
batch loses nothing: finished reports are skipped on a rerun and `leadline resume RUN_ID` finishes a
run that was cut off.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

import leadline


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "report"


async def main(questions_file: Path, out_dir: Path, budget: leadline.Budget) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    questions = [q.strip() for q in questions_file.read_text().splitlines() if q.strip()]
    async with leadline.Researcher() as researcher:
        for i, question in enumerate(questions, 1):
            target = out_dir / f"{i:03d}-{slug(question)}.md"
            if target.exists():
                continue
            try:
                result = await researcher.aresearch(question, mode="report", budget=budget)
            except leadline.LeadlineError as exc:  # keep going; the run and its evidence stay recorded
                print(f"[{i}/{len(questions)}] failed: {exc.message}", file=sys.stderr)
                continue
            target.write_text(result.report or result.answer)
            print(
                f"[{i}/{len(questions)}] {target.name}: {result.spend.tokens} tokens, "
                f"{result.spend.searches} searches",
                file=sys.stderr,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("questions_file", type=Path)
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("reports"))
    parser.add_argument("--tokens", type=int, default=1500, help="generated tokens per report")
    parser.add_argument("--searches", type=int, default=4, help="search calls per report")
    args = parser.parse_args()
    budget = leadline.Budget(tokens=args.tokens, searches=args.searches)
    asyncio.run(main(args.questions_file, args.out_dir, budget))
