import numpy as np
import pytest

from leadline.budgets.cost import CostModel
from leadline.errors import ConfigError
from leadline.evals.outcomes import OutcomeRow, OutcomeTable
from leadline.evals.policies import CURVE_MODELS, choose_curves, evaluate_table, predict_quality

POINTS = [(64, 1), (256, 1), (256, 2), (1024, 2), (1024, 4), (4096, 4)]


def _row(
    qid: str, split: str, point: tuple[int, int], solved: float, features: dict[str, float]
) -> OutcomeRow:
    t, s = point
    return OutcomeRow(
        question_id=qid,
        split=split,
        question="q",
        tokens=t,
        searches=s,
        em=solved,
        f1=solved,
        spent_tokens=t,
        spent_searches=s,
        features=features,
    )


def _table(seed: int = 0, n: int = 80) -> OutcomeTable:
    """Easy questions are solved at any budget, hard ones only at large ones; a feature tells them apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("train", "dev"):
        for q in range(n):
            hard = q % 2 == 1
            need = rng.integers(3, 6) if hard else 0
            for j, (t, s) in enumerate(POINTS):
                solved = float(j >= need)
                features = {"hard": float(hard) + rng.normal(0, 0.05), "length": 1.0}
                rows.append(_row(f"{split}{q}", split, (t, s), solved, features))
    return OutcomeTable(rows)


@pytest.mark.parametrize("curves", ["conditioned", "buckets"])
def test_policies_on_a_table_where_difficulty_is_visible(curves: str) -> None:
    report = evaluate_table(_table(), cost=CostModel(search_cost_tokens=100.0), metric="em", curves=curves)
    assert report.questions == 80 and report.budget_points == len(POINTS)
    for p in report.points:
        assert p.oracle >= p.uniform - 1e-12
        assert p.oracle >= p.adaptive - 1e-12
        assert p.adaptive_compute <= p.compute + 1e-6 and p.oracle_compute <= p.compute + 1e-6
    # The feature separates easy from hard, so the adaptive policy beats uniform in the middle.
    assert report.gap_closed > 0.3
    assert report.adaptive_efficiency > 1.0
    assert "gap closed" in report.describe()


def test_too_few_points_or_rows_are_clear_errors() -> None:
    table = _table(n=10)
    one_point = OutcomeTable([r for r in table if (r.tokens, r.searches) == POINTS[0]])
    with pytest.raises(ConfigError, match="at least 2 budget points"):
        evaluate_table(one_point)
    with pytest.raises(ConfigError):
        evaluate_table(table.split("dev"))


def test_auto_picks_a_difficulty_model_when_difficulty_is_visible() -> None:
    table = _table()
    costs = np.array([CostModel(search_cost_tokens=100.0).cost(t, s) for t, s in POINTS])
    points = table.budget_points()
    chosen, held_out = choose_curves(table.split("train"), points, costs, "em", folds=2)
    assert set(held_out) == set(CURVE_MODELS)
    assert chosen in ("conditioned", "buckets")
    assert held_out[chosen] > held_out["means"]
    report = evaluate_table(table, cost=CostModel(search_cost_tokens=100.0), metric="em", curves=chosen)
    assert report.gap_closed > 0.3


def _noise_table(seed: int = 0, n: int = 60) -> OutcomeTable:
    """Outcomes independent of the features: difficulty predicts nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("train", "dev"):
        for q in range(n):
            for j, (t, s) in enumerate(POINTS):
                solved = float(rng.random() < 0.2 + 0.1 * j)
                features = {"noise": float(rng.normal()), "length": float(rng.normal())}
                rows.append(_row(f"{split}{q}", split, (t, s), solved, features))
    return OutcomeTable(rows)


def test_means_model_treats_every_question_alike() -> None:
    table = _noise_table()
    points = table.budget_points()
    pred = predict_quality(table.split("train"), table.split("dev"), points, "em", [], curves="means")
    assert pred.shape == (60, len(points))
    assert np.allclose(pred, pred[0])  # one row repeated: no question is singled out
    report = evaluate_table(table, metric="em", curves="means")
    assert report.questions == 60


def test_auto_notes_the_model_it_chose() -> None:
    report = evaluate_table(_noise_table(n=16), metric="em")  # "auto": chosen on the train questions
    assert any("chosen on held-out train questions" in n for n in report.notes)


def test_unknown_curve_model_and_tiny_train_sets() -> None:
    table = _noise_table(n=5)
    with pytest.raises(ConfigError, match="curves must be one of"):
        evaluate_table(table, curves="splines")
    costs = np.arange(1.0, len(POINTS) + 1)
    chosen, held_out = choose_curves(table.split("train"), table.budget_points(), costs, "em")
    assert (chosen, held_out) == ("means", {})
