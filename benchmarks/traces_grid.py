"""Does the runtime controller's curve-scale grid bind? The shipped fit against a wider, finer grid.

``fit_runtime`` picks the curve scales σ, τ (in steps) and their log-scale spread from a grid
(``leadline.evals.traces.SCALES`` and ``SCALE_SDS``). On the committed traces some of the fitted values
sit on the grid's edge (the spread at its largest, 0.8, for both packaged Qwen models), which could mean
the grid, a hand-set choice, constrains the fit. This refits on the same train traces with a grid four
times wider on each side and three times finer, and evaluates both on the same dev traces exactly as
``leadline tune --traces FILE --no-run`` does.

    python benchmarks/traces_grid.py benchmarks/data/traces-qwen2.5-1.5b-instruct.jsonl

Ends with one line: ``grid_efficiency_shipped= grid_efficiency_wide= grid_train_price_f1_shipped=
grid_train_price_f1_wide=``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import leadline.evals.traces as traces_module
from leadline.evals.traces import fit_runtime, read_traces
from leadline.evals.traces_eval import evaluate_traces

WIDE_SCALES = tuple(float(x) for x in np.round(np.geomspace(0.25, 64.0, 25), 3))
WIDE_SDS = tuple(float(x) for x in np.round(np.arange(0.0, 2.01, 0.2), 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("traces")
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    ts = read_traces(args.traces)
    grid: Any = traces_module  # the fit reads its grid from these two module constants
    grids: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
        "shipped": (grid.SCALES, grid.SCALE_SDS),
        "wide": (WIDE_SCALES, WIDE_SDS),
    }
    figures: dict[str, str] = {}
    try:
        for name, (scales, sds) in grids.items():
            grid.SCALES, grid.SCALE_SDS = scales, sds
            fitted = fit_runtime(ts.split("train"))
            r = evaluate_traces(ts, bootstrap=args.bootstrap)
            compute, f1 = r.at_train_price
            print(
                f"{name:8} grid ({len(scales)} scales {scales[0]}-{scales[-1]}, spreads {sds[0]}-{sds[-1]}): "
                f"sigma {fitted.search_scale}, tau {fitted.think_scale}, spread {fitted.scale_sd}; dev: "
                f"efficiency {r.efficiency:.3f} [{r.compute_interval[0]:.0f}, {r.compute_interval[1]:.0f}], "
                f"train price {r.train_price:.2g} -> F1 {f1:.3f} at {compute:.0f}, "
                f"gain at equal compute {r.f1_gain_at_equal_compute:+.4f}",
                flush=True,
            )
            figures[f"grid_efficiency_{name}"] = f"{r.efficiency:.4f}"
            figures[f"grid_train_price_f1_{name}"] = f"{f1:.4f}"
    finally:
        grid.SCALES, grid.SCALE_SDS = grids["shipped"]
    print(" ".join(f"{k}={v}" for k, v in sorted(figures.items())))


if __name__ == "__main__":
    main()
