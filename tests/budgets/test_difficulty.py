import json
from pathlib import Path

import numpy as np
import pytest

from leadline.budgets.difficulty import (
    TEXT_FEATURES,
    Difficulty,
    IsotonicCalibrator,
    LearnedEstimator,
    ProbeEstimator,
    TextFeatureEstimator,
    answer_agreement,
    roc_auc,
    text_features,
)
from leadline.errors import ConfigError


def test_text_features_see_the_cues() -> None:
    multi = text_features(
        "Who was the first president of the association which published the Journal of Psychology?"
    )
    assert multi["multihop"] == 1.0 and multi["relative_clauses"] >= 2 and multi["entities"] >= 1
    compare = text_features("Which is older, the Eiffel Tower or the Statue of Liberty?")
    assert compare["comparison"] >= 2
    assert text_features("How many people lived in Oslo in 1990?")["numeric"] == 1.0
    assert text_features("When did the war end?")["temporal"] == 1.0
    assert text_features("Is Paris in France?")["yes_no"] == 1.0
    assert set(multi) == set(TEXT_FEATURES)


def test_text_estimator_ranks_chained_questions_harder_and_types_them() -> None:
    est = TextFeatureEstimator()
    hard = est.estimate(
        "Whose father was a navigator who explored the east coast of the region where Sergio Villanueva"
        " was born?"
    )
    easy = est.estimate("Is Paris in France?")
    assert hard.score > easy.score
    assert hard.qtype == "compositional" and easy.qtype == "single"
    assert 0 <= hard.uncertainty <= 1


def test_difficulty_values_are_checked() -> None:
    with pytest.raises(ConfigError):
        Difficulty(score=1.5, uncertainty=0.1)


def test_probes_agreeing_samples_and_a_peaked_search_mean_easier() -> None:
    probe = ProbeEstimator(text=None)
    sure = probe.estimate_from(
        "q", retrieval_scores=[9.0, 2.0, 1.5, 1.0], samples=["Paris", "paris"], answer_logprob=-0.1
    )
    unsure = probe.estimate_from(
        "q", retrieval_scores=[3.0, 2.9, 2.8], samples=["Paris", "Lyon"], answer_logprob=-4.0
    )
    assert sure.score < unsure.score
    assert sure.features["sample_agreement"] == 1.0 and unsure.features["sample_agreement"] == 0.0
    assert answer_agreement("the river Thames", "Thames river") == pytest.approx(0.8)


def _synthetic(n: int, seed: int) -> tuple[list[dict[str, float]], list[bool]]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        row = {name: float(rng.normal()) for name in TEXT_FEATURES}
        z = 2.0 * row["multihop"] - 1.5 * row["yes_no"]
        rows.append(row)
        labels.append(bool(rng.random() < 1 / (1 + np.exp(-z))))
    return rows, labels


def test_learned_estimator_fits_predicts_and_round_trips(tmp_path: Path) -> None:
    train_x, train_y = _synthetic(400, 0)
    test_x, test_y = _synthetic(300, 1)
    est = LearnedEstimator().fit(train_x, train_y)
    p, u = est.predict(test_x)
    assert roc_auc(p, test_y) > 0.75
    assert np.all((u >= 0) & (u <= 0.5))
    est.save(tmp_path / "est.json")
    again = LearnedEstimator.load(tmp_path / "est.json")
    np.testing.assert_allclose(again.predict(test_x)[0], p)
    assert json.loads((tmp_path / "est.json").read_text())["kind"] == "logistic"
    d = again.estimate("Who founded the company that makes the iPhone?")
    assert 0 <= d.score <= 1


def test_learned_estimator_refuses_unusable_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        LearnedEstimator().fit([{"length": 1.0}] * 5, [True] * 5)
    with pytest.raises(ConfigError):
        LearnedEstimator().predict([{"length": 1.0}])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError):
        LearnedEstimator.load(tmp_path / "bad.json")


def test_isotonic_is_monotone_and_roc_auc_is_right() -> None:
    cal = IsotonicCalibrator().fit([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 1, 0, 1, 1, 1])
    out = cal.predict([0.0, 0.15, 0.35, 0.7])
    assert np.all(np.diff(out) >= 0)
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))
