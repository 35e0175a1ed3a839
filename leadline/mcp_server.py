"""``leadline mcp``: research as tools for assistants that speak the Model Context Protocol.

Built on the official ``mcp`` SDK (``MCPServer``). Three tools: ``research`` (the cited answer),
``report`` (the Markdown report) and ``runs`` (list recorded runs, or fetch one). One
:class:`~leadline.Researcher` serves every call, so the model loads once; runs on the embedded engine go
one at a time (llama.cpp is not re-entrant), runs against a server may overlap. Bad arguments (a
negative budget, an empty question, an unknown run id) are MCP protocol errors (``INVALID_PARAMS``)
raised before anything is recorded; a run that fails midway is a tool error naming the run to resume.
Each step of a run is sent as a progress notification when the client asks for progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel, Field

from leadline.api import Researcher, validate_question
from leadline.budgets.ledger import Budget
from leadline.config import Settings
from leadline.errors import (
    ConfigError,
    InvalidBudgetError,
    InvalidQuestionError,
    LeadlineError,
    RunNotFoundError,
)
from leadline.lifecycle import Mode
from leadline.storage.base import RunRecord

__all__ = ["BudgetArgs", "LeadlineTools", "build_server", "serve"]

MAX_LIST = 200
"""The most runs one ``runs`` call lists."""


class BudgetArgs(BaseModel):
    """What one run may spend, as a tool argument (the two axes and an optional wall-clock cap)."""

    tokens: int = Field(default=1024, description="Generated tokens the run may spend (at least 1).")
    searches: int = Field(default=4, description="Search calls the run may make (at least 1).")
    seconds: float | None = Field(default=None, description="Optional wall-clock limit in seconds.")
    thinks: int | None = Field(
        default=None, description="Optional cap on think steps (0: answer straight from the sources)."
    )
    search_cost: float | None = Field(
        default=None,
        description="What one search costs the controller, in generated tokens (default: measured).",
    )

    def to_budget(self) -> Budget:
        """The library budget; raises :class:`~leadline.errors.InvalidBudgetError` on a bad value."""
        return Budget(
            tokens=self.tokens,
            searches=self.searches,
            seconds=self.seconds,
            thinks=self.thinks,
            search_cost_tokens=self.search_cost,
        )


def _invalid(message: str) -> MCPError:
    return MCPError(INVALID_PARAMS, message)


@dataclass
class LeadlineTools:
    """The tools' shared state: one Researcher and the gate that serializes runs on the embedded engine."""

    settings: Settings
    researcher: Researcher | None = None
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def open(self) -> Researcher:
        """The one Researcher every tool call shares, made on first use."""
        if self.researcher is None:
            self.researcher = Researcher(self.settings)
            if self.settings.base_url:  # a server batches requests: let runs overlap
                self.gate = asyncio.Semaphore(8)
        return self.researcher

    async def aclose(self) -> None:
        """Close the shared Researcher, if one was made."""
        if self.researcher is not None:
            await self.researcher.aclose()
            self.researcher = None

    async def run(
        self, question: str, budget: BudgetArgs | None, mode: Mode, ctx: Context | None
    ) -> dict[str, Any]:
        """Validate, run one question with progress notifications, and return the result as a dict."""
        try:
            text = validate_question(question)
            plan = (budget or BudgetArgs()).to_budget()
        except (InvalidQuestionError, InvalidBudgetError) as exc:
            raise _invalid(exc.message) from None
        researcher = self.open()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def on_event(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        async def pump() -> None:
            count = 0
            while (event := await events.get()) is not None:
                count += 1
                if ctx is not None:
                    message = (
                        f"{event['node']}: {event['detail']} ({event['tokens_left']} tokens, "
                        f"{event['searches_left']} searches left)"
                    )
                    with contextlib.suppress(Exception):  # a client gone away costs only its progress
                        await ctx.report_progress(count, None, message)

        async with self.gate:
            sender = asyncio.create_task(pump())
            try:
                result = await researcher.aresearch(text, budget=plan, mode=mode, progress=on_event)
            except (InvalidQuestionError, InvalidBudgetError, ConfigError) as exc:
                raise _invalid(exc.message) from None
            except LeadlineError as exc:
                run_id = exc.run_data.get("run_id")
                hint = f"; run {run_id} kept its record (leadline resume {run_id})" if run_id else ""
                raise ToolError(f"{exc.message}{hint}") from exc
            finally:
                events.put_nowait(None)
                await sender
        return result.to_dict()

    def runs(self, run_id: str | None, limit: int, status: str | None) -> dict[str, Any]:
        """One run in full, or the newest ``limit`` runs in brief."""
        store = self.open().store
        if run_id is not None:
            try:
                return {"run": _record(store.get_run(run_id), full=True)}
            except RunNotFoundError as exc:
                raise _invalid(exc.message) from None
        if not 1 <= limit <= MAX_LIST:
            raise _invalid(f"limit must be between 1 and {MAX_LIST}, got {limit}")
        records = store.list_runs(limit=limit)
        if status is not None:
            records = [r for r in records if r.status == status]
        return {"runs": [_record(r, full=False) for r in records]}


def _record(record: RunRecord, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run_id": record.run_id,
        "question": record.question,
        "status": record.status,
        "mode": record.mode,
        "model": record.model,
        "answer": record.answer,
        "spend": record.spend,
        "created_at": record.created_at.isoformat() if record.created_at else None,
    }
    if full:
        data.update(
            budget=record.budget,
            citations=record.citations,
            report=record.report,
            error=record.error,
            finished_at=record.finished_at.isoformat() if record.finished_at else None,
        )
    return data


def build_server(settings: Settings, *, researcher: Researcher | None = None) -> MCPServer[LeadlineTools]:
    """The MCP server with leadline's tools over one Researcher (built from ``settings`` unless given)."""
    state = LeadlineTools(settings, researcher=researcher)

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer[LeadlineTools]) -> AsyncIterator[LeadlineTools]:
        try:
            yield state
        finally:
            await state.aclose()

    server: MCPServer[LeadlineTools] = MCPServer(
        "leadline",
        instructions=(
            "Deep research with cited sources under a budget of generated tokens and search calls. "
            "Use research for a short cited answer, report for a long-form Markdown report, and runs "
            "to look up earlier runs."
        ),
        lifespan=lifespan,
        log_level="WARNING",
    )

    @server.tool()
    async def research(
        question: str, budget: BudgetArgs | None = None, ctx: Context | None = None
    ) -> dict[str, Any]:
        """Research a question and return the cited answer, the sources and what the run spent."""
        return await state.run(question, budget, "answer", ctx)

    @server.tool()
    async def report(question: str, budget: BudgetArgs | None = None, ctx: Context | None = None) -> str:
        """Research a question and return a long-form Markdown report with numbered citations."""
        result = await state.run(question, budget, "report", ctx)
        return str(result.get("report") or result["answer"])

    @server.tool()
    def runs(
        run_id: str | None = None,
        limit: int = 20,
        status: Literal["done", "running", "failed", "interrupted"] | None = None,
    ) -> dict[str, Any]:
        """List recorded runs (newest first), or fetch one run in full by its id."""
        return state.runs(run_id, limit, status)

    return server


def serve(settings: Settings, *, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Serve over stdio, or over streamable HTTP at ``http://HOST:PORT/mcp`` when ``port`` is given."""
    server = build_server(settings)
    if port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
