"""See what each extra search or token buys: one question at a grid of budgets, side by side.

    python examples/budget_tradeoff.py "Who was the first president of the association that published
    the Journal of Psychotherapy Integration?"

Prints the answer, its token F1 against --gold (if given), and the real spend at each budget point
(--points to choose them). For whole question sets use `leadline tune`, which fits gain curves to such
tables and writes a report with plots (--report DIR).
"""

from __future__ import annotations

import argparse

import leadline
from leadline.evals.metrics import token_f1

GRID = [(128, 1), (256, 1), (256, 2), (512, 2), (512, 3), (1024, 4)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("question")
    parser.add_argument("--gold", action="append", default=[])
    parser.add_argument("--points", help="TOKENSxSEARCHES, comma separated (default: a six-point grid)")
    args = parser.parse_args()
    grid = GRID
    if args.points:
        grid = [(int(t), int(s)) for t, s in (p.lower().split("x") for p in args.points.split(","))]
    with leadline.Researcher() as researcher:
        print(f"{'tokens':>6} {'searches':>8} | {'spent':>12} | {'F1':>5} | answer")
        for tokens, searches in grid:
            r = researcher.research(args.question, budget=leadline.Budget(tokens=tokens, searches=searches))
            f1 = f"{token_f1(r.answer, args.gold):.2f}" if args.gold else "  -  "
            spent = f"{r.spend.tokens}t/{r.spend.searches}s"
            print(f"{tokens:>6} {searches:>8} | {spent:>12} | {f1:>5} | {r.answer}")


if __name__ == "__main__":
    main()
