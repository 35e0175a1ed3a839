"""The tuning report (evals/report.py): figures, plots, files, and no half-written report on failure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from leadline.budgets.cost import CostModel
from leadline.budgets.tuned import TunedModel
from leadline.errors import ConfigError
from leadline.evals import report as report_module
from leadline.evals.outcomes import OutcomeRow, OutcomeTable
from leadline.evals.report import bootstrap, build_report_data, check_report_dir, write_report
from leadline.evals.tuning import fit_tuned

POINTS = [(128, 1), (256, 2), (512, 3), (1024, 4)]
PNG = b"\x89PNG\r\n\x1a\n"


def _table(n: int = 16, seed: int = 0) -> OutcomeTable:
    """Easy questions are solved cheaply, hard ones only at large budgets; a feature tells them apart.
    Runs stop early: they spend part of the token budget and between one and all of their searches."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("train", "dev"):
        for q in range(n):
            hard = q % 2 == 1
            need = int(rng.integers(1, 4)) if hard else 0
            for j, (t, s) in enumerate(POINTS):
                solved = float(j >= need) * float(0.6 + 0.4 * rng.random())
                rows.append(
                    OutcomeRow(
                        question_id=f"{split}{q}",
                        split=split,
                        question="q",
                        tokens=t,
                        searches=s,
                        em=float(solved > 0.8),
                        f1=solved,
                        spent_tokens=int(t * rng.uniform(0.3, 1.0)),
                        spent_searches=int(rng.integers(1, s + 1)),
                        features={"hard": float(hard) + float(rng.normal(0, 0.05))},
                    )
                )
    return OutcomeTable(rows)


def test_bootstrap_interval_brackets_the_mean() -> None:
    iv = bootstrap([0.0, 1.0] * 50)
    assert iv.mean == 0.5 and 0.38 < iv.low < 0.5 < iv.high < 0.62
    assert bootstrap([0.7] * 10) == report_module.Interval(0.7, 0.7, 0.7)


def test_report_figures_compare_the_three_policies() -> None:
    data = build_report_data(_table(), cost=CostModel(search_cost_tokens=100.0), curves="buckets")
    assert data.questions == 16 and data.split == "dev"
    assert [u.point[:2] for u in data.uniform] == POINTS
    assert len(data.adaptive) == len(data.oracle) == len(POINTS)
    for u, a, o in zip(data.uniform, data.adaptive, data.oracle, strict=True):
        assert u.quality.low <= u.quality.mean <= u.quality.high
        assert o.quality.mean >= u.quality.mean - 1e-9  # hindsight never loses to a fixed budget
        assert a.compute <= u.budget_compute + 1e-6 and o.compute <= u.budget_compute + 1e-6
    # the feature separates easy from hard: the adaptive controller beats uniform somewhere in the middle
    assert any(
        a.quality.mean > u.quality.mean + 0.02 for u, a in zip(data.uniform, data.adaptive, strict=True)
    )
    assert data.recommended in [u.point for u in data.uniform]
    best = max(u.quality.mean for u in data.uniform)
    rec = next(u for u in data.uniform if u.point == data.recommended)
    assert rec.quality.mean >= max(u.quality.low for u in data.uniform if u.quality.mean == best)
    shares = data.by_point[(512, 3, "sequential")]["token_share"]
    assert len(shares) == 16 and all(0 < s <= 1 for s in shares)


def test_dev_only_table_reports_fixed_budgets_and_says_why_not_the_rest() -> None:
    dev = _table().split("dev")
    data = build_report_data(dev)
    assert data.uniform and not data.adaptive
    assert any("no train rows" in n for n in data.notes)


def test_write_report_makes_html_markdown_plots_and_tuned_settings(tmp_path: Path) -> None:
    table = _table()
    target = tmp_path / "report"
    write_report(table, target, source="table.jsonl", tuned=fit_tuned(table))  # curves chosen as tune does
    files = sorted(p.name for p in target.iterdir())
    assert files == sorted(
        [
            ".leadline-report",
            "quality_vs_compute.png",
            "quality_vs_searches_tokens.png",
            "report.html",
            "report.md",
            "tuned.json",
            "where_runs_stopped.png",
        ]
    )
    for name, _, _ in report_module.PLOTS:
        data = (target / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    md = (target / "report.md").read_text()
    html = (target / "report.html").read_text()
    for name, _, _ in report_module.PLOTS:
        assert f"({name})" in md and f"src='{name}'" in html
    assert "--tuned tuned.json" in md and "--budget-tokens" in md
    assert "adaptive" in html and "oracle" in html
    assert TunedModel.load(target / "tuned.json").kind in ("buckets", "pooled")
    assert list(tmp_path.iterdir()) == [target]  # no scratch folder left beside it
    write_report(table, target, curves="means")  # a report folder may be replaced by a new report
    assert not (target / "tuned.json").exists()
    assert list(tmp_path.iterdir()) == [target]


def test_an_unwritable_report_dir_is_one_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        check_report_dir(tmp_path / "missing" / "report")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_report_dir(tmp_path / "a-file")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds other files"):
        write_report(_table(), other, curves="means")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores permissions (root)")
        with pytest.raises(ConfigError, match="not writable"):
            write_report(_table(), locked / "report", curves="means")
    finally:
        locked.chmod(0o700)


def test_a_failure_while_writing_leaves_no_half_written_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: object, path: Path) -> None:
        path.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    plots = list(report_module.PLOTS)
    plots[1] = (plots[1][0], plots[1][1], broken)
    monkeypatch.setattr(report_module, "PLOTS", tuple(plots))
    with pytest.raises(ConfigError, match="No space left on device"):
        write_report(_table(), tmp_path / "report", curves="means")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        write_report(OutcomeTable([]), tmp_path / "report")
    assert list(tmp_path.iterdir()) == []
