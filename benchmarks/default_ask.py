"""Does `leadline ask` with no flags run the policy the traces evaluated?

The traces report scores the shipped runtime controller by replaying its decision rule on recorded traces
(``controller_stops``): its answer is the probe where it stops, its compute the steps up to there. The
product does not replay a trace: it runs the loop, and its controller chooses the axis at each step
(a trace only alternates search and think), prices a search with the λ it measures, and answers with the
reader once at the end. This script runs the default ``ask`` — the embedded default model, the demo
index, ``ask``'s default budget (1,024 tokens, 4 searches), the default controller (``auto``: the shipped
fitted controller) — on traced questions, and sets each run beside the replay on the same question: F1,
steps, and compute counted as the traces count it (think steps × the think cap + 500 × searches; the
answer's own tokens are not charged in a trace), with the one-search baseline beside them.

    python benchmarks/default_ask.py record --split dev --limit 60 --home DIR  # resumable, ~1 min a question
    python benchmarks/default_ask.py [--split dev]                            # the comparison
    python benchmarks/default_ask.py record --search-cost 500 --limit 30 ...  # λ as in the traces
    python benchmarks/default_ask.py --search-cost 500

``--search-cost`` sets ``Budget(search_cost_tokens=...)``, the price of a search in tokens that ``ask``
otherwise measures on the engine (λ; on the demo index a search costs next to nothing): at the traces'
500 the run prices its steps as the replay does, which separates what λ changes from what the loop does.

``record`` appends one row per question to ``benchmarks/data/default_ask.MODEL.jsonl`` in the traces
file's order, skipping those already there. Ends with one line of key=value figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from traced_runs import arguments, mean_se, read_rows

from leadline import Budget, Researcher, Settings
from leadline.budgets.fitted import FittedController, packaged_fitted_path
from leadline.controller_choice import choose_controller
from leadline.evals.metrics import exact_match, token_f1
from leadline.evals.traces import Trace, fit_runtime, read_traces
from leadline.evals.traces_eval import controller_stops

DATA = Path(__file__).parent / "data"
BUDGET = Budget(tokens=1024, searches=4)
"""``ask``'s default budget (its CLI defaults; the search's price in tokens is measured, as in ``ask``)."""
SEARCH_COST = 500.0
"""The traces' price of a search in tokens, used to count every run's compute alike."""


def _paths(model: str) -> tuple[Path, Path]:
    return DATA / f"traces-{model}.jsonl", DATA / f"default_ask.{model}.jsonl"


async def record(model: str, split: str, limit: int, home: str | None, search_cost: float | None) -> None:
    """Run the default ``ask`` on the first ``limit`` traced questions of ``split`` not yet recorded."""
    traces_path, out = _paths(model)
    done = {r["question_id"] for r in read_rows(out) if r.get("search_cost_setting") == search_cost}
    budget = replace(BUDGET, search_cost_tokens=search_cost)
    todo = [t for t in read_traces(traces_path).traces if t.split == split][:limit]
    settings = Settings.from_env(home=Path(home) if home else None, model=model, seed=0)
    choice = choose_controller("auto", None, settings)
    print(f"controller: {choice.kind} ({choice.source})", flush=True)
    async with Researcher(settings, controller=choice.factory) as researcher:
        for t in todo:
            if t.question_id in done:
                continue
            started = time.monotonic()
            lam = researcher.measured_search_cost  # λ the run prices a search at (None: 500 until measured)
            result = await researcher.aresearch(t.question, budget=budget)
            actions = [e["node"] for e in result.trace if e["node"] in ("search", "think")]
            row = {
                "question_id": t.question_id,
                "split": t.split,
                "answer": result.answer,
                "f1": round(token_f1(result.answer, t.gold), 4),
                "em": exact_match(result.answer, t.gold),
                "actions": actions,
                "searches": result.spend.searches,
                "thinks": actions.count("think"),
                "think_tokens": result.allocation.get("think_tokens"),
                "tokens": result.spend.tokens,
                "forced": result.forced,
                "seconds": round(time.monotonic() - started, 2),
                "search_cost_tokens": lam if search_cost is None else search_cost,
                "search_cost_setting": search_cost,
            }
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            print(
                f"{t.question_id}: F1 {row['f1']:.2f} {''.join(a[0] for a in actions)} {row['seconds']} s",
                flush=True,
            )


def compare(model: str, split: str, search_cost: float | None) -> dict[str, Any]:
    """The recorded default runs against the replay of the shipped controller on the same traces."""
    traces_path, out = _paths(model)
    traces = read_traces(traces_path)
    by_id: dict[str, Trace] = {t.question_id: t for t in traces.traces}
    rows = [
        r
        for r in read_rows(out)
        if r["split"] == split and r["question_id"] in by_id and r.get("search_cost_setting") == search_cost
    ]
    if not rows:
        raise SystemExit(f"no recorded {split} rows in {out}: run `record` first")
    shipped = FittedController.load(packaged_fitted_path(model))
    fitted = fit_runtime(traces.split("train"))
    replay_stop = {
        r["question_id"]: controller_stops(fitted, by_id[r["question_id"]], shipped.price) for r in rows
    }
    run_f1 = [float(r["f1"]) for r in rows]
    replay_f1 = [by_id[r["question_id"]].f1(replay_stop[r["question_id"]]) for r in rows]
    one_f1 = [by_id[r["question_id"]].f1(1) for r in rows]
    run_cost = [r["thinks"] * float(r["think_tokens"] or 0) + SEARCH_COST * r["searches"] for r in rows]
    replay_cost = [by_id[r["question_id"]].cost(replay_stop[r["question_id"]]) for r in rows]
    replay_steps = {q: [s.action for s in by_id[q].steps[:k]] for q, k in replay_stop.items()}
    same_steps = sum(1 for r in rows if r["actions"] == replay_steps[r["question_id"]])
    replay_thinks = [replay_steps[r["question_id"]].count("think") for r in rows]
    replay_searches = [replay_steps[r["question_id"]].count("search") for r in rows]
    same_thinks = sum(1 for r, c in zip(rows, replay_thinks, strict=True) if r["thinks"] == c)
    lams = [float(r["search_cost_tokens"]) for r in rows if r.get("search_cost_tokens") is not None]
    (rm, rs), (pm, ps), (om, os_) = mean_se(run_f1), mean_se(replay_f1), mean_se(one_f1)
    dm, ds = mean_se([a - b for a, b in zip(run_f1, replay_f1, strict=True)])
    d1m, d1s = mean_se([a - b for a, b in zip(run_f1, one_f1, strict=True)])
    flags = "with no flags" if search_cost is None else f"with a search priced at {search_cost:g} tokens"
    print(f"{model}, {split}: `leadline ask` {flags} on {len(rows)} traced questions")
    print(f"  the product's run          F1 {rm:.3f} ± {rs:.3f} at compute {statistics.fmean(run_cost):,.0f}")
    print(
        f"  the replay on the traces   F1 {pm:.3f} ± {ps:.3f} "
        f"at compute {statistics.fmean(replay_cost):,.0f} (price {shipped.price:.2g})"
    )
    print(f"  one search (the traces)    F1 {om:.3f} ± {os_:.3f} at compute {SEARCH_COST:,.0f}")
    print(f"  run − replay               {dm:+.3f} ± {ds:.3f};  run − one search {d1m:+.3f} ± {d1s:.3f}")
    print(
        f"  the same steps as the replay on {same_steps} of {len(rows)}, the same think steps on "
        f"{same_thinks}; the replay: {statistics.fmean(replay_searches):.2f} searches, "
        f"{statistics.fmean(replay_thinks):.2f} think steps"
    )
    if lams:
        how = "measured on the engine" if search_cost is None else "set"
        print(
            f"  λ the runs priced a search at ({how}): median {statistics.median(lams):.3g} "
            f"tokens over {len(lams)} runs (the traces: {SEARCH_COST:.0f})"
        )
    shapes: dict[str, int] = {}
    for r in rows:
        key = "".join(a[0] for a in r["actions"])
        shapes[key] = shapes.get(key, 0) + 1
    steps = ", ".join(f"{k} {v}" for k, v in sorted(shapes.items()))
    print(f"  the runs' steps (s search, t think): {steps}")
    print(
        f"  per run: {statistics.fmean(r['searches'] for r in rows):.2f} searches, "
        f"{statistics.fmean(r['thinks'] for r in rows):.2f} think steps, "
        f"{statistics.fmean(r['tokens'] for r in rows):.0f} generated tokens, "
        f"{statistics.fmean(r['seconds'] for r in rows):.1f} s; "
        f"forced on {sum(1 for r in rows if r['forced'])}"
    )
    return {
        "default_ask_questions": len(rows),
        "default_ask_f1": round(rm, 4),
        "replay_f1": round(pm, 4),
        "one_search_f1": round(om, 4),
        "default_ask_compute": round(statistics.fmean(run_cost), 1),
        "replay_compute": round(statistics.fmean(replay_cost), 1),
        "default_ask_same_steps": round(same_steps / len(rows), 4),
        "default_ask_same_thinks": round(same_thinks / len(rows), 4),
    }


def main() -> None:
    p = arguments(__doc__)
    p.add_argument("--search-cost", type=float, default=None, help="λ in tokens (default: measured, as ask)")
    a = p.parse_args()
    if a.command == "record":
        asyncio.run(record(a.model, a.split, a.limit, a.home, a.search_cost))
        return
    out = compare(a.model, a.split, a.search_cost)
    print(" ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
