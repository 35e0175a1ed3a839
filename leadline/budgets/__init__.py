"""The two-axis budget: limits and ledger, enforcement at the boundary, and the controller that decides
how many reasoning tokens and search calls each question gets (see docs/controller.md).

Import direction: ``ledger`` and ``controller`` are the seams the loop uses; the adaptive controller and
its estimators, curves and allocators build on them.
"""

from leadline.budgets.adaptive import AdaptiveBatch, AdaptiveController, DifficultyCurves, PriorCurves
from leadline.budgets.allocation import (
    AllocationGrid,
    Plan,
    QueryPlan,
    allocate,
    allocate_batch,
)
from leadline.budgets.bounds import dual_upper_bound
from leadline.budgets.controller import Allocation, Controller, Decision, FixedController, RunObservation
from leadline.budgets.cost import CostModel, measure_search_cost
from leadline.budgets.curves import GainCurve
from leadline.budgets.difficulty import (
    Difficulty,
    DifficultyEstimator,
    LearnedEstimator,
    ProbeEstimator,
    TextFeatureEstimator,
)
from leadline.budgets.ledger import Budget, Ledger, LedgerEntry, Spend
from leadline.budgets.pool import BatchPool
from leadline.budgets.runtime import RuntimeModel, RuntimePolicy, SignalModel
from leadline.budgets.runtime_controller import RuntimeController
from leadline.budgets.shape import choose_shape
from leadline.budgets.timings import EngineTimings, SearchPrice
from leadline.budgets.tuned import TunedModel

__all__ = [
    "AdaptiveBatch",
    "AdaptiveController",
    "Allocation",
    "AllocationGrid",
    "BatchPool",
    "Budget",
    "Controller",
    "CostModel",
    "Decision",
    "Difficulty",
    "DifficultyCurves",
    "DifficultyEstimator",
    "EngineTimings",
    "FixedController",
    "GainCurve",
    "LearnedEstimator",
    "Ledger",
    "LedgerEntry",
    "Plan",
    "PriorCurves",
    "ProbeEstimator",
    "QueryPlan",
    "RunObservation",
    "RuntimeController",
    "RuntimeModel",
    "RuntimePolicy",
    "SearchPrice",
    "SignalModel",
    "Spend",
    "TextFeatureEstimator",
    "TunedModel",
    "allocate",
    "allocate_batch",
    "choose_shape",
    "dual_upper_bound",
    "measure_search_cost",
]
