from leadline.budgets.curves import SamplingCurve, SubstitutesCurve
from leadline.budgets.shape import choose_shape


def test_without_curves_every_question_gets_one_chain() -> None:
    # Votes measured no gain on the packaged models: no question votes unless curves or the caller say so.
    for qtype in ("single", "compositional"):
        choice = choose_shape(qtype, 1024, 2, sample_tokens=128)
        assert choice.shape == "sequential" and choice.samples == 1
        assert "no curves" in choice.reason


def test_asked_to_vote_a_single_fact_question_votes_with_an_odd_count() -> None:
    choice = choose_shape("single", 1024, 2, sample_tokens=128, vote_single=True)
    assert choice.shape == "parallel" and choice.samples % 2 == 1 and choice.samples >= 3


def test_compositional_questions_get_one_longer_chain() -> None:
    choice = choose_shape("compositional", 2048, 4, vote_single=True)
    assert choice.shape == "sequential" and choice.samples == 1
    assert choice.think_tokens >= 48


def test_too_few_tokens_cannot_vote() -> None:
    assert choose_shape("single", 200, 1, sample_tokens=128, vote_single=True).shape == "sequential"


def test_curves_for_both_shapes_decide() -> None:
    strong_parallel = {"parallel": SamplingCurve(a=1.0, p=0.5), "sequential": SubstitutesCurve(a=0.3)}
    assert choose_shape("compositional", 1024, 2, curves=strong_parallel).shape == "parallel"
    strong_chain = {"parallel": SamplingCurve(a=0.2, p=0.1), "sequential": SubstitutesCurve(a=0.9, tau=200)}
    assert choose_shape("single", 1024, 2, curves=strong_chain).shape == "sequential"
