"""What a research run returns: the answer, its citations, the spend and (in report mode) the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from leadline.budgets.ledger import Spend


def _json_copy(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, scalars): what ``asdict``'s deepcopy gives, minus its memo."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_json_copy(v) for v in value)
    return value


@dataclass(frozen=True, kw_only=True)
class Citation:
    """A source the answer rests on: its id (corpus id or URL), title and the passage read."""

    n: int
    doc_id: str
    title: str
    url: str = ""
    passage: str = ""
    support: str = ""
    """The sentence of the passage that supports the answer (empty when none does)."""

    @property
    def source(self) -> str:
        """Where the passage came from: the URL, else the corpus id."""
        return self.url or self.doc_id


@dataclass(frozen=True, kw_only=True)
class ResearchResult:
    """What a research run returns: the answer, its citations, the spend, and the report in report mode."""

    run_id: str
    question: str
    answer: str
    citations: list[Citation]
    spend: Spend
    report: str | None = None
    status: str = "done"
    forced: str | None = None
    """The limit that forced the answer (tokens, searches, steps, seconds), or None."""
    overrun: dict[str, float] = field(default_factory=dict)
    """What was spent past a limit, by limit (``{"tokens": 37}``: a server ignored ``max_tokens``);
    empty when every cap held. A run with an overrun stopped at once and is ``forced`` by that limit."""
    confidence: float | None = None
    confidence_basis: str = ""
    """Where the confidence comes from, in words."""
    unsure: bool = False
    """The answer is not grounded in the sources read, or was forced: a guess, not a finding."""
    allocation: dict[str, Any] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (what ``--json`` prints)."""
        data = {f.name: _json_copy(getattr(self, f.name)) for f in fields(self)}
        data["citations"] = [asdict(c) for c in self.citations]
        data["spend"] = self.spend.to_dict()
        return data

    @classmethod
    def from_state(cls, run_id: str, state: dict[str, Any], spend: Spend) -> ResearchResult:
        """The result of a finished run from the loop's final state and the ledger's spend."""
        return cls(
            run_id=run_id,
            question=state["question"],
            answer=state.get("answer", ""),
            citations=[Citation(**c) for c in state.get("citations") or []],
            spend=spend,
            report=state.get("report"),
            forced=state.get("forced"),
            overrun=dict(state.get("overrun") or {}),
            confidence=state.get("confidence"),
            confidence_basis=state.get("confidence_basis") or "",
            unsure=bool(state.get("unsure", False)),
            allocation=state.get("allocation") or {},
            trace=[dict(t) for t in state.get("trace") or []],
        )
