"""OpenTelemetry spans for runs, graph nodes, LLM calls, searches and page reads — off by default.

Turned on by ``--trace otlp`` (or :func:`configure`), by the standard ``OTEL_*`` variables
(``OTEL_TRACES_EXPORTER=otlp`` or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``), or by :func:`enable`
when the application has set up its own tracer provider. Off, nothing is imported and nothing wraps
anything. Spans are made from outside the code they describe: the compiled graph and each node are
wrapped in ``agent/graph.py``, the model, search and reader clients where a run is wired. Budget
decisions and spend are attributes (``leadline.*``; LLM calls also use the ``gen_ai.*`` conventions).
Prompts, completions and page text are exported only with ``capture_content`` (or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``). Needs the ``otel`` extra.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from leadline.errors import ConfigError

TRACER_NAME = "leadline"
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CONTENT_CHARS = 8000


class _State:
    enabled = False
    content = False


def enabled() -> bool:
    """Whether leadline makes spans."""
    return _State.enabled


def capture_content() -> bool:
    """Whether spans carry prompts, completions and page text."""
    return _State.content


def enable(*, capture_content: bool | None = None) -> None:
    """Make spans through the global tracer provider (the application configures the exporter)."""
    _tracer_module()
    _State.enabled = True
    if capture_content is None:
        capture_content = os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")
    _State.content = capture_content


def disable() -> None:
    """Stop making spans (and exporting content)."""
    _State.enabled = False
    _State.content = False


def env_requests_tracing() -> bool:
    """The standard ``OTEL_*`` variables ask for an exporter."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure(mode: str | None = None, *, capture_content: bool | None = None) -> bool:
    """``mode`` ``otlp``: export spans over OTLP/HTTP (endpoint from ``OTEL_EXPORTER_OTLP_*``, default
    ``http://localhost:4318``); ``none`` or None: only if the ``OTEL_*`` variables ask. Returns whether
    tracing is on. An application's own tracer provider is kept (spans go to it)."""
    if mode not in (None, "none", "otlp"):
        raise ConfigError(f"unknown --trace {mode!r}; use otlp (or set the OTEL_* variables)")
    if mode == "none" or (mode is None and not env_requests_tracing()):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError("tracing needs the otel extra: pip install 'leadline[otel]'") from exc
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "leadline")})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    enable(capture_content=capture_content)
    return True


def shutdown() -> None:
    """Flush and stop the SDK tracer provider :func:`configure` installed (end of a CLI command)."""
    if not _State.enabled:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()


def _tracer_module() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ConfigError("tracing needs the otel extra: pip install 'leadline[otel]'") from exc
    return trace


def _tracer() -> Any:
    return _tracer_module().get_tracer(TRACER_NAME)


def _text(value: str) -> str:
    return value if len(value) <= MAX_CONTENT_CHARS else value[:MAX_CONTENT_CHARS] + "…"


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Any:
    trace = _tracer_module()
    with _tracer().start_as_current_span(name, attributes=_clean(attributes), record_exception=True) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)[:500] or type(exc).__name__))
            raise


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None and isinstance(v, str | bool | int | float)}


def _allocation_attributes(alloc: dict[str, Any]) -> dict[str, Any]:
    return {
        f"leadline.allocation.{k}": alloc.get(k)
        for k in ("difficulty", "tokens", "searches", "shape", "reason")
    }


def _spend_attributes(spend: Any) -> dict[str, Any]:
    return {
        "leadline.spend.tokens": spend.tokens,
        "leadline.spend.prompt_tokens": spend.prompt_tokens,
        "leadline.spend.searches": spend.searches,
        "leadline.spend.fetches": spend.fetches,
        "leadline.spend.llm_calls": spend.llm_calls,
    }


# -- the graph ----------------------------------------------------------------------------------------
def traced_node(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A graph node that, while tracing is on, runs in a ``leadline.node`` span with its decisions."""

    @functools.wraps(fn)
    async def node(state: Any, runtime: Any) -> Any:
        if not _State.enabled:
            return await fn(state, runtime)
        ctx = runtime.context
        with _span(
            f"leadline.node {name}",
            {"leadline.node": name, "leadline.run_id": ctx.run_id, "leadline.step": state.get("step")},
        ) as span:
            update = await fn(state, runtime)
            attrs: dict[str, Any] = {
                "leadline.budget.tokens_left": ctx.ledger.tokens_left,
                "leadline.budget.searches_left": ctx.ledger.searches_left,
            }
            if isinstance(update, dict):
                if update.get("allocation"):
                    attrs |= _allocation_attributes(update["allocation"])
                events = update.get("trace") or []
                if events:
                    attrs["leadline.action"] = events[-1].get("action")
                    attrs["leadline.reason"] = events[-1].get("detail")
                if update.get("forced"):
                    attrs["leadline.forced"] = update["forced"]
            span.set_attributes(_clean(attrs))
            return update

    return node


class TracedGraph:
    """A compiled graph whose ``ainvoke`` is one ``leadline.run`` span (the nodes' spans inside it)."""

    def __init__(self, graph: Any) -> None:
        self._graph = graph

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """The graph's ``ainvoke`` inside a ``leadline.run`` span while tracing is on."""
        if not _State.enabled:
            return await self._graph.ainvoke(input, config, **kwargs)
        ctx = kwargs.get("context")
        budget = getattr(ctx, "budget", None)
        attrs: dict[str, Any] = {
            "leadline.run_id": getattr(ctx, "run_id", None),
            "leadline.resumed": input is None,
            "leadline.budget.tokens": getattr(budget, "tokens", None),
            "leadline.budget.searches": getattr(budget, "searches", None),
            "leadline.budget.search_cost_tokens": getattr(budget, "search_cost_tokens", None),
        }
        if _State.content and isinstance(input, dict) and input.get("question"):
            attrs["leadline.question"] = _text(str(input["question"]))
        with _span("leadline.run", attrs) as span:
            try:
                state = await self._graph.ainvoke(input, config, **kwargs)
            finally:
                ledger = getattr(ctx, "ledger", None)
                if ledger is not None:
                    span.set_attributes(_clean(_spend_attributes(ledger.spend)))
            if isinstance(state, dict):
                extra = _allocation_attributes(state.get("allocation") or {})
                extra["leadline.forced"] = state.get("forced")
                extra["leadline.citations"] = len(state.get("citations") or [])
                if _State.content:
                    extra["leadline.answer"] = _text(str(state.get("answer") or ""))
                span.set_attributes(_clean(extra))
            return state


# -- clients --------------------------------------------------------------------------------------------
class TracedLLM:
    """An LLM client whose calls are ``gen_ai`` spans (a recorded call replayed on resume makes none)."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    @property
    def model_name(self) -> str:
        """The wrapped client's model."""
        return str(self._llm.model_name)

    def count_tokens(self, text: str) -> int:
        """The wrapped client's token count."""
        return int(self._llm.count_tokens(text))

    async def chat(self, messages: Sequence[Any], params: Any) -> Any:
        """A chat call in a ``gen_ai`` span."""
        content = [f"{m.role}: {m.content}" for m in messages] if _State.content else None
        return await self._call("chat", self._llm.chat(messages, params), params, content)

    async def complete(self, prompt: str, params: Any) -> Any:
        """A text completion in a ``gen_ai`` span."""
        return await self._call("text_completion", self._llm.complete(prompt, params), params, [prompt])

    async def _call(self, operation: str, call: Any, params: Any, content: list[str] | None) -> Any:
        if not _State.enabled:
            return await call
        attrs = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": self.model_name,
            "gen_ai.request.max_tokens": params.max_tokens,
            "gen_ai.request.temperature": params.temperature,
            "leadline.samples": params.n,
        }
        if _State.content and content:
            attrs["gen_ai.prompt"] = _text("\n\n".join(content))
        started = time.perf_counter()
        with _span(f"{operation} {self.model_name}", attrs) as span:
            completion = await call
            done: dict[str, Any] = {
                "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
                "gen_ai.response.model": completion.model or None,
                "leadline.latency_s": round(time.perf_counter() - started, 4),
            }
            if _State.content:
                done["gen_ai.completion"] = _text(completion.text)
            span.set_attributes(_clean(done))
            return completion

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self._llm.aclose()


class TracedSearch:
    """A search backend (and reader) whose searches and page reads are spans."""

    def __init__(self, search: Any, reader: Any = None) -> None:
        self._search = search
        self._reader = reader if reader is not None else search
        self.name = getattr(search, "name", type(search).__name__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._search, name)

    async def search(self, query: str, *, k: int = 5, links: int = 0) -> Any:
        """A search in a ``leadline.search`` span."""
        more = {"links": links} if links else {}
        if not _State.enabled:
            return await self._search.search(query, k=k, **more)
        attrs = {"leadline.search.backend": self.name, "leadline.search.k": k}
        attrs["leadline.search.query"] = query if _State.content else None
        with _span("leadline.search", attrs) as span:
            results = await self._search.search(query, k=k, **more)
            span.set_attribute("leadline.search.results", len(results))
            return results

    async def read(self, result: Any) -> Any:
        """A page read in a ``leadline.fetch`` span."""
        if not _State.enabled:
            return await self._reader.read(result)
        attrs = {"leadline.fetch.doc_id": result.doc_id, "leadline.fetch.url": result.url or None}
        with _span("leadline.fetch", attrs) as span:
            document = await self._reader.read(result)
            span.set_attribute("leadline.fetch.chars", len(document.text))
            if _State.content:
                span.set_attribute("leadline.fetch.text", _text(document.text))
            return document

    async def aclose(self) -> None:
        """Close the wrapped backend."""
        await self._search.aclose()


def trace_clients(llm: Any, search: Any, reader: Any) -> tuple[Any, Any, Any]:
    """The run's clients wrapped in spans while tracing is on (unchanged when it is off)."""
    if not _State.enabled:
        return llm, search, reader
    traced = TracedSearch(search, reader)
    return TracedLLM(llm), traced, traced if reader is not None else None


__all__ = [
    "TracedGraph",
    "TracedLLM",
    "TracedSearch",
    "capture_content",
    "configure",
    "disable",
    "enable",
    "enabled",
    "env_requests_tracing",
    "shutdown",
    "trace_clients",
    "traced_node",
]
