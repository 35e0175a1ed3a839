"""How well each difficulty estimator predicts "the run fails at a small budget" (AUC).

Reads an outcome table (JSONL, :mod:`leadline.evals.outcomes`), labels each question by its score at the
cheapest budget point (failed = score < 0.5), fits the learned estimators on the *train* rows and reports
the AUC of every estimator on the *dev* rows. Estimators:

* ``text_prior``    — :class:`TextFeatureEstimator` with its fixed prior weights (nothing fitted);
* ``probe_prior``   — :class:`ProbeEstimator` with its fixed weights over the text prior, when the table
  has probe features (``--probes``, from ``benchmarks/probe_features.py``);
* ``text_learned``  — :class:`LearnedEstimator` on the text features;
* ``probe_learned`` — :class:`LearnedEstimator` on probe features (score spread, sample agreement,
  answer log-probability), when the table has them;
* ``all_learned``   — both sets together.

Ends with one line of key=value figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from leadline.budgets.difficulty import (
    TEXT_FEATURES,
    LearnedEstimator,
    ProbeEstimator,
    TextFeatureEstimator,
    roc_auc,
)
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeRow, OutcomeTable
from leadline.evals.policies import cheapest_point

PROBE_FEATURES = ("score_spread", "sample_agreement", "answer_logprob", "has_hits")


def labelled(table: OutcomeTable, metric: str) -> dict[str, tuple[OutcomeRow, bool]]:
    """Each question's row at the cheapest budget point and whether it failed there."""
    small = cheapest_point(table.budget_points())
    return {r.question_id: (r, r.score(metric) < 0.5) for r in table if r.point == small}


def evaluate(table: OutcomeTable, metric: str = "em") -> dict[str, float]:
    train = labelled(table.split("train"), metric) if len(table.split("train")) else {}
    dev = labelled(table.split("dev"), metric) if len(table.split("dev")) else {}
    if not train or not dev:
        raise ConfigError("the table needs train and dev rows at the cheapest budget point")
    dev_rows = [r for r, _ in dev.values()]
    dev_y = np.array([y for _, y in dev.values()])
    train_rows = [r for r, _ in train.values()]
    train_y = [y for _, y in train.values()]
    out: dict[str, float] = {
        "n_train": float(len(train_rows)),
        "n_dev": float(len(dev_rows)),
        "dev_fail_rate": float(dev_y.mean()),
    }
    prior = TextFeatureEstimator()
    out["auc_text_prior"] = roc_auc([prior.estimate(r.question).score for r in dev_rows], dev_y)
    has_probes = all(any(k in r.features for k in PROBE_FEATURES) for r in train_rows + dev_rows)
    sets = {"text_learned": TEXT_FEATURES}
    if has_probes:
        probe = ProbeEstimator()
        out["auc_probe_prior"] = roc_auc(
            [probe.estimate_probes(r.question, r.features).score for r in dev_rows], dev_y
        )
        sets["probe_learned"] = PROBE_FEATURES
        sets["all_learned"] = TEXT_FEATURES + PROBE_FEATURES
    for name, features in sets.items():
        try:
            est = LearnedEstimator(feature_names=features).fit(
                [dict(r.features) for r in train_rows], train_y
            )
        except ConfigError as exc:
            print(f"{name}: not fitted ({exc})")
            out[f"auc_{name}"] = float("nan")
            continue
        scores, _ = est.predict([dict(r.features) for r in dev_rows])
        out[f"auc_{name}"] = roc_auc(scores, dev_y)
    return out


def with_probes(table: OutcomeTable, path: Path) -> OutcomeTable:
    """The table with each question's probe features (one JSON line per question) in its rows."""
    probes = {}
    for line in path.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            qid = data.pop("question_id")
            probes[qid] = {k: float(v) for k, v in data.items()}
    missing = {r.question_id for r in table} - set(probes)
    if missing:
        raise ConfigError(f"{len(missing)} questions of the table have no probe features in {path}")
    return OutcomeTable([replace(r, features={**r.features, **probes[r.question_id]}) for r in table])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="difficulty estimator AUC on an outcome table")
    parser.add_argument("table", type=Path, nargs="?", help="outcome table JSONL")
    parser.add_argument("--metric", default="em", choices=("em", "f1", "recall"))
    parser.add_argument("--probes", type=Path, default=None, help="probe features JSONL to join")
    args = parser.parse_args(argv)
    if args.table is None or not args.table.exists():
        why = "no table given" if args.table is None else f"{args.table} does not exist"
        print(f"skipped: {why}; produce an outcome table with the sweep first")
        print("auc_text_prior=nan auc_text_learned=nan")
        return 0
    table = OutcomeTable.read_jsonl(args.table)
    if args.probes is not None:
        table = with_probes(table, args.probes)
    figures = evaluate(table, args.metric)
    for key, value in figures.items():
        print(f"{key:>20}: {value:.4f}")
    print(" ".join(f"{k}={v:.4g}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
