"""λ measured on the engine in use (issue 3, item 1): what a search costs in tokens, with and without
the prefill its passages cause.

Runs a few dev questions with one Researcher on the embedded default (local model, local corpus) at
search budgets that differ from run to run, then prints the measured price of a search — its call, its
reads and the prefill of the prompt tokens it adds — beside the call-time-only price the same timings
give, and the engine's prefill and decode rates.

    python benchmarks/search_price.py --n 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from shared_datasets import DATASETS

from leadline import Budget, Researcher, Settings
from leadline.evals.datasets import load_questions, sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="questions (search budgets cycle 1..4)")
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items = sample(load_questions(DATASETS / "multihop" / "questions.dev.jsonl"), args.n, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="leadline-price-") as tmp:
        settings = Settings.from_env(home=Path(tmp), model=args.model, seed=0)
        with Researcher(settings) as researcher:
            for i, item in enumerate(items):
                searches = 1 + i % 4
                started = time.perf_counter()
                result = researcher.research(item.question, budget=Budget(tokens=512, searches=searches))
                price = researcher.search_price
                print(
                    f"run {i + 1}: {result.spend.searches} searches, {result.spend.prompt_tokens} prompt"
                    f" tokens, {time.perf_counter() - started:.1f} s; λ now "
                    f"{price.tokens if price else float('nan'):.1f}",
                    file=sys.stderr,
                    flush=True,
                )
            price = researcher.search_price
    if price is None:
        print("no search was made; nothing to price")
        return 1
    prefill_tps = price.prefill_tokens_per_second or float("nan")
    print(
        f"search call {price.search_seconds * 1e3:.1f} ms, reads {price.read_seconds * 1e3:.1f} ms,"
        f" prompt tokens a search adds {price.prompt_tokens_per_search or 0:.0f},"
        f" their prefill {price.prefill_seconds:.2f} s; engine prefill {prefill_tps:.0f} tok/s,"
        f" decode {price.decode_tokens_per_second:.1f} tok/s"
    )
    print(
        f"lambda_tokens={price.tokens:.4g}"
        f" prompt_tokens_per_search={price.prompt_tokens_per_search or 0:.4g}"
        f" lambda_call_only_tokens={price.call_only_tokens:.4g} prefill_seconds={price.prefill_seconds:.4g}"
        f" decode_tps={price.decode_tokens_per_second:.4g}"
        f" prefill_tps={prefill_tps:.4g} runs={len(items)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
