"""The public surface, pinned (as httpx does): a change to what users import is a deliberate edit here.

Each package's ``__all__`` is compared with the exact sorted list below, and every name in it must
resolve. Adding or removing a public name means editing this file, which makes the change visible in
review; interface modules get the same check on their own ``__all__``.
"""

from __future__ import annotations

import importlib

import pytest

PINNED: dict[str, list[str]] = {
    "leadline": [
        "Allocation",
        "BatchItem",
        "BlockedURLError",
        "Budget",
        "BudgetError",
        "BudgetExceededError",
        "Citation",
        "Completion",
        "ConfigError",
        "Controller",
        "CorpusIndexError",
        "Decision",
        "Document",
        "FetchError",
        "FixedController",
        "GenerationParams",
        "InvalidBudgetError",
        "InvalidQuestionError",
        "LLMClient",
        "LLMConnectionError",
        "LLMError",
        "LLMResponseError",
        "LeadlineError",
        "Ledger",
        "Message",
        "ModelNotFoundError",
        "ModelTooLargeError",
        "ResearchResult",
        "Researcher",
        "RunNotFoundError",
        "RunObservation",
        "RuntimeController",
        "RuntimeModel",
        "SchemaVersionError",
        "SearchBackend",
        "SearchError",
        "SearchResult",
        "Settings",
        "Spend",
        "StorageError",
        "ToolError",
        "TunedModel",
        "Usage",
        "__version__",
        "aresearch",
        "research",
    ],
    "leadline.budgets": [
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
    ],
    "leadline.testing": [
        "FakeFetcher",
        "FakeSearch",
        "LLMCall",
        "MemoryRunStore",
        "RealResourceUsed",
        "ScriptedLLM",
        "no_real_io",
    ],
}

INTERFACE_MODULES = [
    "leadline.llm.base",
    "leadline.tools.base",
    "leadline.storage.base",
    "leadline.budgets.ledger",
    "leadline.budgets.controller",
]


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_public_surface_is_exactly_the_pinned_list(package: str) -> None:
    exported = list(importlib.import_module(package).__all__)
    pinned = PINNED[package]
    added, removed = sorted(set(exported) - set(pinned)), sorted(set(pinned) - set(exported))
    assert not added and not removed, f"{package}.__all__ changed: added {added}, removed {removed}"
    assert exported == pinned, f"{package}.__all__ is not sorted"


@pytest.mark.parametrize("module", sorted(PINNED) + INTERFACE_MODULES)
def test_every_exported_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("module", INTERFACE_MODULES)
def test_interface_modules_declare_a_sorted_all(module: str) -> None:
    names = importlib.import_module(module).__all__
    assert names == sorted(names) and len(names) == len(set(names))
