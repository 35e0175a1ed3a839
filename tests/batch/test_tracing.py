"""OpenTelemetry spans: off by default; on, a run, its nodes, LLM calls, searches and reads, with the
budget decisions and spend as attributes; prompts and page text only when asked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leadline import Budget, Researcher, Settings
from leadline.agent import tracing
from leadline.budgets.adaptive import AdaptiveController
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document, SearchResult

from .conftest import sensible_reply

QUESTION = "Which college did the author of The Selfish Gene attend?"
_provider = TracerProvider()
_exporter = InMemorySpanExporter()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # the global provider can be set once per process; spans go to it through the proxy tracer
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_provider)
    _exporter.clear()
    yield _exporter
    tracing.disable()
    _exporter.clear()


class WebLike(FakeSearch):
    """Results without text, so every source is fetched (a web search's shape)."""

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        found = await super().search(query, k=k)
        return [replace(r, text=None, url=f"https://example.org/{r.doc_id}") for r in found]


def _run(docs: list[Document]) -> None:
    web = WebLike(docs)
    llm, search, reader = tracing.trace_clients(ScriptedLLM(sensible_reply), web, web)
    store = MemoryRunStore()
    with Researcher(
        Settings(), llm=llm, search=search, reader=reader, store=store, controller=AdaptiveController
    ) as r:
        r.research(QUESTION, budget=Budget(tokens=400, searches=2))


def test_no_spans_unless_tracing_is_on(spans: InMemorySpanExporter, docs: list[Document]) -> None:
    assert not tracing.enabled() and not tracing.configure(None)  # no OTEL_* variables: off
    _run(docs)
    assert spans.get_finished_spans() == ()


def test_spans_for_the_run_its_nodes_llm_calls_and_searches(
    spans: InMemorySpanExporter, docs: list[Document]
) -> None:
    tracing.enable(capture_content=False)
    _run(docs)
    finished = spans.get_finished_spans()
    by_name: dict[str, list] = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)
    (run,) = by_name["leadline.run"]
    assert run.attributes["leadline.budget.tokens"] == 400 and run.attributes["leadline.budget.searches"] == 2
    assert run.attributes["leadline.spend.searches"] >= 1 and run.attributes["leadline.spend.llm_calls"] >= 1
    assert 0 <= run.attributes["leadline.allocation.difficulty"] <= 1
    nodes = [s for s in finished if s.name.startswith("leadline.node ")]
    assert {"leadline.node assess", "leadline.node decide", "leadline.node answer"} <= {s.name for s in nodes}
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in nodes)
    (assess,) = by_name["leadline.node assess"]
    assert assess.attributes["leadline.allocation.tokens"] <= 400
    decide = by_name["leadline.node decide"][-1]
    assert decide.attributes["leadline.action"] == "answer" and decide.attributes["leadline.reason"]
    llm = [s for s in finished if s.name.startswith("chat ")]
    assert llm and all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in llm)
    assert all(s.parent is not None and s.parent.span_id in {n.context.span_id for n in nodes} for s in llm)
    assert by_name["leadline.search"] and by_name["leadline.fetch"]
    # content is not exported unless asked
    assert not any("gen_ai.prompt" in s.attributes or "leadline.fetch.text" in s.attributes for s in finished)
    assert not any("leadline.search.query" in s.attributes for s in finished)


def test_prompts_and_page_text_only_when_asked(spans: InMemorySpanExporter, docs: list[Document]) -> None:
    tracing.enable(capture_content=True)
    _run(docs)
    finished = spans.get_finished_spans()
    prompts = [s.attributes["gen_ai.prompt"] for s in finished if s.name.startswith("chat ")]
    assert prompts and QUESTION in prompts[0]
    assert any("Balliol" in str(s.attributes.get("leadline.fetch.text", "")) for s in finished)


def test_trace_otlp_without_the_extra_or_a_bad_mode_is_a_clear_error() -> None:
    from leadline.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown --trace"):
        tracing.configure("jaeger")
