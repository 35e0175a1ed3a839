"""search: run the next pending query; one charged call, results deduplicated against what was read.

A query that mostly finds what the run has read wastes its search. With :data:`BACKFILL` on, the call
asks the backend for as many more results as the run has read, so the search still brings up to ``k``
documents it has not seen (the next-ranked ones). The controller's signal stays what it was: how many
of the query's own top ``k`` were new (``new_docs_last_search``), so a query that repeats earlier ones
still reads as one that found nothing new near the top. It is off: measured on the default model it
brought more sources but almost no gold passage (docs/benchmarks.md).

With ``search_links`` (a backend that follows links: the local corpus), the call also brings up to that
many passages its results link to (docs/corpus-index.md, "Links"), read after the search's own; they are
not counted in the controller's signal either. A passage the search's *top* result links to is read at
rank :data:`LINKED_FROM_TOP_RANK`, so that it competes for the prompt with the second results of every
search rather than after all of them; one a lower result links to keeps its rank after the search's own.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import call_id, trace
from leadline.agent.state import ResearchState
from leadline.errors import BudgetExceededError, SearchError
from leadline.tools.base import SearchResult

LINKED_FROM_TOP_RANK: int | None = 2
"""The rank a passage named by its search's top result is read at (None: after the search's own, as the
other linked passages). On the 200 train questions (the demo index, each question's top 5 and up to two
passages they link to) such a passage is gold 33 % of the time: about as often as the second result
(30 %), far less than the top one (79 %). One that a lower result names is gold 3 % of the time, below
even the fifth result (5 %), so it keeps its place after the search's own (docs/benchmarks.md; dev: 31 %
against 85 % and 45 %, and 3 %)."""

BACKFILL = False
"""Fill a search's ``k`` results with next-ranked documents the run has not read; measured in
docs/benchmarks.md (``benchmarks/search_arms.py``)."""


def first_unread(results: Sequence[SearchResult], read: Container[str], k: int) -> list[SearchResult]:
    """The first ``k`` of ``results`` not read before."""
    return [r for r in results if r.doc_id not in read][:k]


def own_results(results: Sequence[SearchResult]) -> list[SearchResult]:
    """A search's own results, without the linked passages it brought."""
    return [r for r in results if not r.linked_from]


def sources_read(
    results: Sequence[SearchResult], read: Container[str], k: int, links: int = 0
) -> tuple[list[SearchResult], list[SearchResult]]:
    """What a run reads from a search: its first ``k`` direct results not read before, and the first
    ``links`` linked ones read neither before nor among those (the trace recorder rebuilds a run's
    sources with it too). A linked passage that the top result names is read at
    :data:`LINKED_FROM_TOP_RANK`."""
    direct = own_results(results)
    new = first_unread(direct, read, k)
    taken = {r.doc_id for r in new}
    linked = first_unread([r for r in results if r.linked_from and r.doc_id not in taken], read, links)
    if LINKED_FROM_TOP_RANK is None or not direct:
        return new, linked
    top, rank = direct[0].doc_id, LINKED_FROM_TOP_RANK
    return new, [replace(r, rank=rank) if r.linked_from == top else r for r in linked]


async def search(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The search node: run the next pending query not yet run; results already read are dropped."""
    ctx = runtime.context
    pending = list(state.get("pending_queries") or [])
    done = {q.lower() for q in state["queries_done"]}
    while pending and pending[0].lower() in done:
        pending.pop(0)
    query = pending.pop(0) if pending else state["question"]
    seen = {e["doc_id"] for e in state["evidence"]}
    update: dict[str, Any] = {"pending_queries": pending, "step": state["step"] + 1}
    try:
        depth = ctx.search_k + (len(seen) if BACKFILL else 0)
        # ask for as many more linked passages as the run has read: those it has read are dropped below
        links = ctx.search_links + len(seen) if ctx.search_links and ctx.search.follows_links else 0
        results = await ctx.search.search(call_id(state, "search"), "search", query, k=depth, links=links)
    except BudgetExceededError as exc:
        ctx.emit("search", "refused", str(exc), state["step"])
        return {
            **update,
            "results": [],
            "new_docs_last_search": 0,
            "forced": "searches",
            "trace": trace(state, "search", "refused", str(exc)),
        }
    except SearchError as exc:  # the agent sees a failed search as an observation and moves on
        ctx.emit("search", "failed", exc.message, state["step"])
        return {
            **update,
            "results": [],
            "new_docs_last_search": 0,
            "searches_done": state["searches_done"] + 1,
            "queries_done": [query],
            "trace": trace(state, "search", "failed", exc.message),
        }
    direct = own_results(results)
    top_new = sum(1 for r in direct[: ctx.search_k] if r.doc_id not in seen)
    new, linked = sources_read(results, seen, ctx.search_k, ctx.search_links if links else 0)
    detail = f"{query!r}: {min(len(direct), ctx.search_k)} results, {top_new} new"
    if len(new) > top_new:
        detail += f", {len(new) - top_new} next-ranked"
    if linked:
        detail += f", {len(linked)} linked ({', '.join(repr(r.title) for r in linked)})"
    ctx.emit("search", "search", detail, state["step"])
    return {
        **update,
        "results": [{**r.to_dict(), "query": query} for r in [*new, *linked]],
        "new_docs_last_search": top_new,
        "searches_done": state["searches_done"] + 1,
        "queries_done": [query],
        "trace": trace(state, "search", "search", detail),
    }
