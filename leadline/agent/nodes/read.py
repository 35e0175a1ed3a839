"""read: load the documents behind new search results (passages, or fetched and extracted pages)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import call_id, trace
from leadline.agent.state import Evidence, ResearchState
from leadline.errors import BudgetExceededError, FetchError
from leadline.storage.base import SourceRecord, off_loop
from leadline.tools.base import SearchResult


async def read(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The read node: load each new result (corpus passage or fetched page) into numbered evidence."""
    ctx = runtime.context
    next_n = len(state["evidence"]) + 1
    new: list[Evidence] = []
    sources: list[SourceRecord] = []
    failures: list[str] = []
    for i, row in enumerate(state.get("results") or []):
        result = SearchResult.from_dict(row)
        try:
            doc = await ctx.search.read(call_id(state, "read", i), "read", result)
        except BudgetExceededError:
            failures.append("fetch budget used up")
            break
        except FetchError as exc:  # route around pages that cannot be read
            failures.append(f"{result.url or result.doc_id}: {exc.reason}")
            continue
        if not doc.text.strip():
            continue
        new.append(
            Evidence(
                n=next_n + len(new),
                doc_id=doc.doc_id,
                title=doc.title,
                url=doc.url,
                text=doc.text,
                query=row.get("query", ""),
                score=float(row.get("score", 0.0)),
                rank=int(row.get("rank", 0)),
            )
        )
        sources.append(
            SourceRecord(run_id=ctx.run_id, doc_id=doc.doc_id, title=doc.title, url=doc.url, text=doc.text)
        )
    if sources:  # in a worker thread, off the event loop; recorded before the node returns
        await off_loop(ctx.store.record_sources, sources)
    detail = f"{len(new)} sources read" + (f", {len(failures)} failed" if failures else "")
    ctx.emit("read", "read", detail, state["step"])
    return {
        "evidence": new,
        "results": [],
        "step": state["step"] + 1,
        "trace": trace(state, "read", "read", detail + "".join(f"; {f}" for f in failures[:3])),
    }
