import pytest

from leadline.budgets.adaptive import AdaptiveBatch, AdaptiveController, DifficultyCurves, PriorCurves
from leadline.budgets.controller import Controller, RunObservation
from leadline.budgets.curves import ConstantCurve, SubstitutesCurve
from leadline.budgets.difficulty import Difficulty, TextFeatureEstimator
from leadline.budgets.ledger import Budget
from leadline.budgets.pool import BatchPool
from leadline.errors import ConfigError

HARD = (
    "Whose father was a navigator who explored the east coast of the region where Sergio Villanueva was born?"
)
EASY = "Is Paris in France?"


def _obs(**kw) -> RunObservation:  # type: ignore[no-untyped-def]
    base = dict(
        question=HARD,
        step=1,
        searches_done=0,
        searches_left=4,
        tokens_left=2048,
        thinks_done=0,
        evidence_count=0,
        new_docs_last_search=0,
        pending_queries=1,
    )
    base.update(kw)
    return RunObservation(**base)  # type: ignore[arg-type]


class _Fixed:
    def __init__(self, curve) -> None:  # type: ignore[no-untyped-def]
        self.curve = curve

    def curve_for(self, difficulty: Difficulty):  # type: ignore[no-untyped-def]
        return self.curve


def test_implements_the_protocol_and_stays_within_the_budget() -> None:
    ctl = AdaptiveController()
    assert isinstance(ctl, Controller)
    alloc = ctl.assess(HARD, Budget(tokens=2048, searches=4))
    assert 0 < alloc.tokens <= 2048 and 0 <= alloc.searches <= 4
    assert alloc.shape == "sequential"  # a chained question
    assert 0 <= alloc.difficulty <= 1


def test_single_fact_questions_vote_only_when_asked() -> None:
    # Votes measured no gain on the packaged models (docs/benchmarks.md): one chain unless asked.
    budget = Budget(tokens=2048, searches=4)
    plain = AdaptiveController().assess(EASY, budget)
    assert plain.shape == "sequential" and plain.samples == 1
    voting = AdaptiveController(vote_single_fact=True).assess(EASY, budget)
    assert voting.shape == "parallel" and voting.samples >= 3 and voting.samples % 2 == 1


def test_harder_questions_get_more_under_the_prior() -> None:
    budget = Budget(tokens=4096, searches=8)
    hard = AdaptiveController().assess(HARD, budget)
    easy = AdaptiveController().assess(EASY, budget)
    assert hard.tokens + 500 * hard.searches > easy.tokens + 500 * easy.searches  # strictly more


def test_a_raising_estimator_falls_back_instead_of_crashing() -> None:
    class Broken:
        def estimate(self, question: str) -> Difficulty:
            raise RuntimeError("no")

    alloc = AdaptiveController(estimator=Broken()).assess(HARD, Budget())
    assert alloc.difficulty == 0.5 and alloc.difficulty_uncertainty == 1.0


def test_a_flat_curve_buys_only_the_first_search_and_the_answer() -> None:
    ctl = AdaptiveController(curves=_Fixed(ConstantCurve(level=0.3)))
    alloc = ctl.assess(HARD, Budget(tokens=2048, searches=4))
    assert (alloc.tokens, alloc.searches) == (ctl.answer_reserve, 1)
    assert ctl.decide(_obs()).action == "search"
    decision = ctl.decide(_obs(searches_done=1, searches_left=3, new_docs_last_search=3))
    assert decision.action == "answer"


def test_searches_stop_paying_when_they_bring_nothing_new() -> None:
    curve = SubstitutesCurve(a=0.9, tau=1e9, sigma=3.0)  # only searches help
    ctl = AdaptiveController(curves=_Fixed(curve), price=1.5e-4)
    ctl.assess(HARD, Budget(tokens=2048, searches=8))
    assert ctl.decide(_obs(searches_done=1, searches_left=7, new_docs_last_search=4)).action == "search"
    for done in (2, 3, 4):
        last = ctl.decide(_obs(searches_done=done, searches_left=8 - done, new_docs_last_search=0))
    assert last.action == "answer"


def test_a_confident_agreeing_answer_ends_the_run_early() -> None:
    curve = SubstitutesCurve(a=0.9, tau=800.0, sigma=3.0)
    ctl = AdaptiveController(curves=_Fixed(curve), price=5e-5)
    ctl.assess(HARD, Budget(tokens=2048, searches=6))
    busy = ctl.decide(_obs(searches_done=1, searches_left=5, new_docs_last_search=3))
    assert busy.action in ("search", "think")
    done = ctl.decide(
        _obs(
            searches_done=2,
            searches_left=4,
            new_docs_last_search=2,
            candidate_answer="Cabot",
            confidence=0.98,
            sample_agreement=1.0,
        )
    )
    assert done.action == "answer" and "stop early" in done.reason


def test_batch_plan_pool_and_finish() -> None:
    pool = BatchPool()
    batch = AdaptiveBatch([HARD, EASY, "Who wrote Hamlet?"], total_budget=3 * 3000.0, pool=pool)
    assert sum(q.cost for q in batch.plan.values()) <= 9000.0 + 1e-6
    first = batch.controller()
    alloc = first.assess(EASY, batch.budget_for(EASY))
    budget = batch.budget_for(EASY)
    before = pool.snapshot().tokens
    # It stopped early with half its tokens and all but one search unspent.
    first.finish(tokens_unspent=budget.tokens - alloc.tokens // 2, searches_unspent=budget.searches - 1)
    first.finish(tokens_unspent=budget.tokens, searches_unspent=budget.searches)  # a second call is ignored
    snap = pool.snapshot()
    assert snap.tokens - before == alloc.tokens - alloc.tokens // 2
    assert snap.searches == max(0, alloc.searches - 1)
    # A run that starts later re-plans with the pool and draws what pays for it.
    pool.deposit(4000, 4)
    in_pool = pool.snapshot()
    second = batch.controller()
    alloc2 = second.assess(HARD, batch.budget_for(HARD))
    planned = batch.plan[HARD]
    drawn = (alloc2.tokens - planned.tokens, alloc2.searches - planned.searches)
    assert drawn[0] + 500 * drawn[1] > 0
    after = pool.snapshot()
    assert (in_pool.tokens - after.tokens, in_pool.searches - after.searches) == drawn
    assert "from the pool" in alloc2.reason


def test_difficulty_curves_fit_and_round_trip() -> None:
    est = TextFeatureEstimator()
    rows = []
    for q in range(24):
        question = HARD if q % 2 else EASY
        curve = SubstitutesCurve(a=0.5 if q % 2 else 0.9, tau=1500 if q % 2 else 300, sigma=3)
        for t in (0, 256, 512, 1024, 2048):
            for s in (0, 1, 2, 4):
                rows.append((est.estimate(question), t, s, float(curve.value(t, s)), q))
    model = DifficultyCurves.fit(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        bins=2,
        min_groups=4,
        families=("substitutes",),
    )
    hard_curve = model.curve_for(est.estimate(HARD))
    easy_curve = model.curve_for(est.estimate(EASY))
    assert float(easy_curve.value(512, 1)) > float(hard_curve.value(512, 1))
    again = DifficultyCurves.from_dict(model.to_dict())
    assert again.curve_for(est.estimate(HARD)) == hard_curve
    prior = PriorCurves()
    assert float(prior.curve_for(est.estimate(HARD)).value(4096, 4)) < float(
        prior.curve_for(est.estimate(EASY)).value(4096, 4)
    )
    with pytest.raises(ConfigError):
        DifficultyCurves.fit([], [], [], [], [])


def test_tokens_count_against_the_allocation_not_the_hard_cap() -> None:
    curve = SubstitutesCurve(a=0.9, tau=800.0, sigma=1e9)  # only tokens help
    ctl = AdaptiveController(curves=_Fixed(curve), price=1e-6)
    budget = Budget(tokens=8192, searches=4)
    alloc = ctl.assess(HARD, budget)
    # The loop reports what is left of the allocation (lower than the cap's room).
    nearly_spent = ctl.decide(
        _obs(searches_done=1, searches_left=alloc.searches - 1, tokens_left=ctl.answer_reserve + 8)
    )
    assert nearly_spent.action == "answer"
    fresh = ctl.decide(_obs(searches_done=1, searches_left=alloc.searches - 1, tokens_left=alloc.tokens))
    assert fresh.action == "think"


def test_a_batch_survives_an_estimator_that_raises_on_one_question(caplog) -> None:  # type: ignore[no-untyped-def]
    class Picky:
        def estimate(self, question: str) -> Difficulty:
            if question == EASY:
                raise RuntimeError("cannot read this one")
            return TextFeatureEstimator().estimate(question)

    batch = AdaptiveBatch([HARD, EASY, "Who wrote Hamlet?"], total_budget=3 * 2000.0, estimator=Picky())
    assert batch.plan[EASY].fallback and not batch.plan[HARD].fallback
    assert sum(q.cost for q in batch.plan.values()) <= 6000.0 + 1e-6
    assert "uniform share" in caplog.text


def test_a_spent_think_cap_leaves_search_or_answer() -> None:
    from leadline.budgets.controller import FixedController

    curve = SubstitutesCurve(a=0.9, tau=800.0, sigma=1e9)  # only tokens help: it would think
    ctl = AdaptiveController(curves=_Fixed(curve), price=1e-6)
    alloc = ctl.assess(HARD, Budget(tokens=8192, searches=4, thinks=0))
    seen = dict(searches_done=1, searches_left=alloc.searches - 1, tokens_left=alloc.tokens)
    assert ctl.decide(_obs(**seen)).action == "think"  # uncapped (the observation carries the cap)
    assert ctl.decide(_obs(**seen, thinks_left=0)).action != "think"
    fixed = FixedController()
    fixed.assess(HARD, Budget(tokens=2048, searches=1, thinks=0))
    done = dict(searches_done=1, searches_left=0, tokens_left=2048, evidence_count=3)
    assert fixed.decide(_obs(**done)).action == "think"
    assert fixed.decide(_obs(**done, thinks_left=0)).action == "answer"
