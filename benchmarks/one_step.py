"""Does the product's one-step setting give the traces' one-step figure?

The traces report's fixed budget of one step is one search, then the answer (the trace's first probe).
``leadline ask --controller fixed --budget-searches 1 --budget-thinks 0`` claims to be that run. This
script runs it — the real loop, the embedded model, the demo index — on traced questions and compares each
answer with the trace's first probe on the same question: its F1 side by side, how often the two answers
are the same, and what the run spent (searches, think steps, generated tokens).

    python benchmarks/one_step.py record --split dev --limit 135 --home DIR  # resumable, ~13 s a question
    python benchmarks/one_step.py record --controller auto --limit 60 --home DIR  # the default controller
    python benchmarks/one_step.py [--split dev] [--controller auto]          # the comparison

``record`` appends one row per question and controller to ``benchmarks/data/one_step.MODEL.jsonl`` in
the traces file's order, skipping those already there. With ``--controller auto`` (the default of ``ask``)
the adaptive controller sizes the run first and may answer with parallel samples and a vote, so its
answers can differ from the fixed controller's. Ends with one line of key=value figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from traced_runs import arguments, mean_se, read_rows

from leadline import Budget, Researcher, Settings
from leadline.controller_choice import choose_controller
from leadline.evals.metrics import exact_match, normalize_answer, token_f1
from leadline.evals.traces import Trace, read_traces

DATA = Path(__file__).parent / "data"
BUDGET = Budget(tokens=1024, searches=1, thinks=0, search_cost_tokens=500)
"""``--budget-searches 1 --budget-thinks 0`` at the traces' token budget and search price."""


def _paths(model: str) -> tuple[Path, Path]:
    return DATA / f"traces-{model}.jsonl", DATA / f"one_step.{model}.jsonl"


async def record(model: str, split: str, limit: int, home: str | None, controller: str) -> None:
    """Run the one-step setting on the first ``limit`` traced questions of ``split`` not yet recorded."""
    traces_path, out = _paths(model)
    done = {r["question_id"] for r in read_rows(out) if r["controller"] == controller}
    todo = [t for t in read_traces(traces_path).traces if t.split == split][:limit]
    settings = Settings.from_env(home=Path(home) if home else None, model=model, seed=0)
    choice = choose_controller(controller, None, settings)
    print(f"controller: {choice.kind} ({choice.source})", flush=True)
    async with Researcher(settings, controller=choice.factory) as researcher:
        for t in todo:
            if t.question_id in done:
                continue
            started = time.monotonic()
            result = await researcher.aresearch(t.question, budget=BUDGET)
            f1, em = token_f1(result.answer, t.gold), exact_match(result.answer, t.gold)
            row = {
                "question_id": t.question_id,
                "split": t.split,
                "controller": controller,
                "answer": result.answer,
                "f1": round(f1, 4),
                "em": em,
                "probe_answer": t.steps[0].probe.answer,
                "searches": result.spend.searches,
                "thinks": sum(1 for e in result.trace if e["node"] == "think"),
                "tokens": result.spend.tokens,
                "llm_calls": result.spend.llm_calls,
                "forced": result.forced,
                "seconds": round(time.monotonic() - started, 2),
            }
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{t.question_id}: F1 {f1:.2f} (probe {t.f1(1):.2f}) {row['seconds']} s", flush=True)


def compare(model: str, split: str, controller: str) -> dict[str, Any]:
    """The recorded runs against the traces' first probes on the same questions."""
    traces_path, out = _paths(model)
    traces: dict[str, Trace] = {t.question_id: t for t in read_traces(traces_path).traces}
    rows = [
        r
        for r in read_rows(out)
        if r["split"] == split and r["question_id"] in traces and r["controller"] == controller
    ]
    if not rows:
        raise SystemExit(f"no recorded {split} rows in {out}: run `record` first")
    run_f1 = [float(r["f1"]) for r in rows]
    probe_f1 = [float(traces[r["question_id"]].f1(1)) for r in rows]
    same = [normalize_answer(r["answer"]) == normalize_answer(r["probe_answer"]) for r in rows]
    diff_mean, diff_se = mean_se([a - b for a, b in zip(run_f1, probe_f1, strict=True)])
    run_mean, run_se = mean_se(run_f1)
    probe_mean, probe_se = mean_se(probe_f1)
    print(
        f"{model}, {split}: {len(rows)} traced questions run at --controller {controller} "
        "--budget-searches 1 --budget-thinks 0"
    )
    print(f"  the product's run   F1 {run_mean:.3f} ± {run_se:.3f}")
    print(f"  the trace's step 1  F1 {probe_mean:.3f} ± {probe_se:.3f}")
    print(f"  paired difference   {diff_mean:+.3f} ± {diff_se:.3f}")
    print(f"  the same answer on  {sum(same)} of {len(rows)}")
    print(
        f"  spend per run: {statistics.fmean(r['searches'] for r in rows):.2f} searches, "
        f"{statistics.fmean(r['thinks'] for r in rows):.2f} think steps, "
        f"{statistics.fmean(r['tokens'] for r in rows):.0f} generated tokens, "
        f"{statistics.fmean(r['llm_calls'] for r in rows):.2f} LLM calls, "
        f"{statistics.fmean(r['seconds'] for r in rows):.1f} s; "
        f"forced on {sum(1 for r in rows if r['forced'])}"
    )
    return {
        "one_step_questions": len(rows),
        "one_step_f1": round(run_mean, 4),
        "traces_step1_f1": round(probe_mean, 4),
        "one_step_f1_ratio": round(run_mean / probe_mean, 4) if probe_mean else float("nan"),
        "one_step_same_answer": round(sum(same) / len(rows), 4),
        "one_step_max_thinks": max(r["thinks"] for r in rows),
        "one_step_max_searches": max(r["searches"] for r in rows),
    }


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--controller", default="fixed", choices=("fixed", "auto"))
    a = p.parse_args()
    if a.command == "record":
        asyncio.run(record(a.model, a.split, a.limit, a.home, a.controller))
        return
    out = compare(a.model, a.split, a.controller)
    print(" ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
