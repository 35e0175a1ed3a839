"""The runtime controller on real anytime traces (issue 11, point 4): fitted on train, reported on dev.

Reads the committed traces of a packaged model (``benchmarks/data/traces-<model>.jsonl``, recorded with
``leadline tune QUESTIONS --split train|dev --traces FILE``; docs/traces.md), fits the runtime
controller's belief and stop rule on the train traces and evaluates it on the dev traces against every
fixed budget (each step count, and closed book) and the per-question hindsight oracle. Also prints what
recording cost per trace and per step, and each split's F1 after a fixed number of steps by the source of
its questions (the question id's prefix: ``musique``, ``hotpotqa``), with how many answers the step after
the first search makes better and worse. With ``--fit-resamples N`` it also repeats the fit on N
bootstrap resamples of the train questions and prints how often each stop rule (price) is chosen and what
each does on dev: how much the shipped rule rests on which train questions were recorded. With no traces
committed for the model it says so and prints nan.

    python benchmarks/traces.py --model qwen2.5-0.5b-instruct

Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from leadline.config import DEFAULT_MODEL
from leadline.evals.traces import Trace, read_traces
from leadline.evals.traces_eval import FitDraw, evaluate_traces, fit_stability, recording_cost

DATA = Path(__file__).resolve().parent / "data"
STEPS = (0, 1, 2, 3, 4, 5, 8)


def by_source(traces: Sequence[Trace]) -> None:
    """Each split's mean F1 after 0, 1, 2, ... steps, in all and per question source; and what the
    step after each trace's first search does to its answer (better / worse / the mean F1 change)."""
    for split in ("train", "dev"):
        in_split = [t for t in traces if t.split == split and t.steps]
        if not in_split:
            continue
        groups = {"all": in_split}
        for t in in_split:
            groups.setdefault(t.question_id.split("_")[0], []).append(t)
        for name, ts in groups.items():
            f1 = " ".join(f"{i}: {sum(t.f1(i) for t in ts) / len(ts):.3f}" for i in STEPS)
            delta = [t.f1(t.first_search() + 1) - t.f1(t.first_search()) for t in ts]  # 0 past the end
            print(
                f"{split} {name} ({len(ts)}): F1 by steps {f1}; the step after the first search: "
                f"{sum(d > 0 for d in delta)} better, {sum(d < 0 for d in delta)} worse, "
                f"{sum(delta) / len(ts):+.3f}"
            )


def stability(draws: Sequence[FitDraw], shipped: float) -> None:
    """How often each price is chosen across the fit's resamples, and its draws' mean train and dev
    (compute, F1)."""
    prices = sorted({d.price for d in draws})
    for p in prices:
        ds = [d for d in draws if d.price == p]
        mark = " (the full train's choice)" if math.isclose(p, shipped) else ""
        print(
            f"fit on resampled train: price {p:.2g}{mark} in {len(ds)} of {len(draws)} draws; "
            f"train F1 {sum(d.train_f1 for d in ds) / len(ds):.3f} at "
            f"{sum(d.train_compute for d in ds) / len(ds):.0f}; dev F1 "
            f"{sum(d.dev_f1 for d in ds) / len(ds):.3f} at {sum(d.dev_compute for d in ds) / len(ds):.0f}"
        )
    dev_f1 = sorted(d.dev_f1 for d in draws)
    print(
        f"fit on resampled train: dev F1 at each draw's price, median {statistics.median(dev_f1):.3f}, "
        f"range {dev_f1[0]:.3f}-{dev_f1[-1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--traces", type=Path, default=None, help="default: data/traces-MODEL.jsonl")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--fit-resamples", type=int, default=0, help="repeat the fit on N bootstrap resamples of train"
    )
    args = parser.parse_args()
    path = args.traces or DATA / f"traces-{args.model}.jsonl"
    efficiency = gain = math.nan
    if not path.exists():
        print(f"no traces committed for {args.model} ({path}): nothing to evaluate")
    else:
        traces = read_traces(path, model=args.model)
        for why in traces.skipped:
            print(f"skipped: {why}")
        for key, value in recording_cost(traces.traces).items():
            print(f"cost {key}: {value:.3f}")
        by_source(traces.traces)
        report = evaluate_traces(traces, bootstrap=args.bootstrap)
        print(report.describe())
        low, high = report.compute_interval
        print(
            f"compute to match: {report.compute_to_match:.0f} [{low:.0f}, {high:.0f}]; "
            f"efficiency at the train price: {report.efficiency_at_train_price:.3f}; "
            f"the most a policy that searches first can reach: {report.search_first_bound:.3f}"
        )
        _, o_compute, o_f1 = max(report.oracle, key=lambda o: (o[2], -o[1]))
        print(f"oracle (hindsight, per question, closed book allowed): F1 {o_f1:.3f} at {o_compute:.0f}")
        if args.fit_resamples > 0:
            stability(fit_stability(traces, resamples=args.fit_resamples), report.train_price)
        efficiency, gain = report.efficiency, report.f1_gain_at_equal_compute
    print(f"traces_efficiency={efficiency:.4f} traces_f1_gain_at_equal_compute={gain:.4f}")


if __name__ == "__main__":
    main()
