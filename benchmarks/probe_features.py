"""Probe features for the difficulty estimators (issue 3, item 2): what a cheap first look shows.

For every question of an outcome table, on the embedded model and the local corpus: one search (the
score spread of its hits), two short sampled closed-book answers (their agreement) and one greedy short
answer (its mean token log-probability) — the inputs of ``ProbeEstimator`` and of a learned estimator on
probe features. Writes one JSON line per question; ``benchmarks/difficulty_auc.py --probes`` joins them
to the table. Interrupted, it continues where it stopped.

    python benchmarks/probe_features.py benchmarks/out/outcomes.jsonl --out benchmarks/out/probes.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from leadline import Settings
from leadline.budgets.difficulty import probe_features
from leadline.evals.outcomes import OutcomeTable
from leadline.llm.base import GenerationParams, Message
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.llm.models import resolve_model_file
from leadline.wiring import make_search

SYSTEM = "Answer the question with a short phrase only (a name, a date, a number). No explanation."
ANSWER_TOKENS = 24


async def probe(args: argparse.Namespace) -> None:
    table = OutcomeTable.read_jsonl(args.table)
    questions: dict[str, str] = {}
    for row in table:
        questions.setdefault(row.question_id, row.question)
    done: set[str] = set()
    if args.out.exists():
        done = {json.loads(x)["question_id"] for x in args.out.read_text().splitlines() if x.strip()}
    todo = [(q, text) for q, text in sorted(questions.items()) if q not in done]
    print(f"{len(questions)} questions, {len(todo)} to probe", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="leadline-probe-") as tmp:
        settings = Settings.from_env(home=Path(tmp), model=args.model, seed=0)
        path = resolve_model_file(settings.model, settings.models_dir)
        llm = LlamaCppEngine(path, name=settings.model, n_threads=settings.n_threads, logits_all=True)
        search, _ = make_search(settings)
        try:
            for i, (qid, text) in enumerate(todo, 1):
                hits = await search.search(text, k=5)
                messages = [Message("system", SYSTEM), Message("user", text)]
                samples = []
                for seed in (1, 2):
                    params = GenerationParams(max_tokens=ANSWER_TOKENS, temperature=0.8, seed=seed)
                    samples.append((await llm.chat(messages, params)).text.strip())
                greedy = await llm.chat(
                    messages, GenerationParams(max_tokens=ANSWER_TOKENS, temperature=0.0, logprobs=True)
                )
                features = probe_features(
                    retrieval_scores=[h.score for h in hits],
                    samples=samples,
                    answer_logprob=greedy.choices[0].mean_logprob,
                )
                with args.out.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"question_id": qid, **features}) + "\n")
                print(f"  {i}/{len(todo)} {qid} {features}", file=sys.stderr, flush=True)
        finally:
            await search.aclose()
            await llm.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", type=Path, help="outcome table JSONL (its questions are probed)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/probes.jsonl"))
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(probe(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
