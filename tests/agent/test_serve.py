"""The graph `langgraph dev` serves (langgraph.json): question and budget in, cited answer out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from leadline import Researcher, Settings
from leadline.agent.serve import graph
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import QUESTION, sensible


def test_langgraph_json_points_at_the_serving_graph() -> None:
    config = json.loads((Path(__file__).resolve().parents[2] / "langgraph.json").read_text())
    assert config["graphs"]["research"] == "./leadline/agent/serve.py:graph"
    assert set(graph.get_input_jsonschema()["properties"]) >= {"question", "budget_tokens", "budget_searches"}


def test_serving_graph_runs_the_research_loop(monkeypatch: pytest.MonkeyPatch, docs: list[Document]) -> None:
    monkeypatch.setattr(
        "leadline.api.Researcher",
        lambda *a, **k: Researcher(
            Settings(), llm=ScriptedLLM(sensible), search=FakeSearch(docs), store=MemoryRunStore()
        ),
    )
    out = asyncio.run(graph.ainvoke({"question": QUESTION, "budget_tokens": 600, "budget_searches": 3}))
    assert out["answer"] == "Balliol College"
    assert out["citations"][0]["doc_id"] == "d2"
    assert out["spend"]["searches"] == 3
