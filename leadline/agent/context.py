"""The run context: everything a node depends on but that is not state (clients, ledger, callbacks).

LangGraph passes it to each node as ``runtime.context``; it is never checkpointed, so clients and
secrets stay out of the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from leadline.budgets.controller import Controller
from leadline.budgets.enforce import BudgetedLLM, BudgetedSearch
from leadline.budgets.ledger import Budget, Ledger
from leadline.storage.base import RunStore

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass
class RunContext:
    """A run's dependencies (budgeted LLM and search, controller, ledger, store): LangGraph's context,
    never checkpointed.
    """

    run_id: str
    llm: BudgetedLLM
    search: BudgetedSearch
    controller: Controller
    ledger: Ledger
    budget: Budget
    store: RunStore
    progress: ProgressCallback | None = None
    search_k: int = 5
    search_links: int = 0
    """Linked passages a search brings besides its ``search_k`` (backends that follow links only)."""
    max_evidence: int = 8
    """Sources shown to the model at once (the rest stay cited but unread in prompts)."""
    evidence_chars: int = 700
    """Characters of each source shown to the model."""
    answer_reserve: int = 48
    """Generated tokens kept back for the final answer."""
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self, node: str, action: str, detail: str = "", step: int = 0) -> None:
        """Report progress (node, action, detail and budget left) to the caller's callback, if any."""
        if self.progress is None:
            return
        spend = self.ledger.spend
        self.progress(
            {
                "run_id": self.run_id,
                "step": step,
                "node": node,
                "action": action,
                "detail": detail,
                "tokens_left": self.ledger.tokens_left,
                "searches_left": self.ledger.searches_left,
                "tokens_spent": spend.tokens,
                "searches_spent": spend.searches,
            }
        )
