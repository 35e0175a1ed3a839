"""The loop against an OpenAI-compatible server (the vLLM path), over a real socket on 127.0.0.1."""

from __future__ import annotations

import json

from leadline import Budget, Researcher, Settings
from leadline.testing import FakeSearch, MemoryRunStore
from leadline.testing.fake_openai_server import serve_fake_openai
from leadline.tools.base import Document

from .conftest import QUESTION


def test_research_through_a_vllm_style_server(docs: list[Document]) -> None:
    replies = [
        json.dumps({"queries": ["Selfish Gene author"]}),
        json.dumps(
            {"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Richard Dawkins college"}
        ),
        json.dumps({"answer": "Balliol College", "sources": [2]}),
    ]
    with serve_fake_openai(flavor="vllm", replies=replies, model="served-model") as server:
        settings = Settings(base_url=server.url)
        with Researcher(settings, search=FakeSearch(docs), store=MemoryRunStore()) as r:
            result = r.research(QUESTION, budget=Budget(tokens=600, searches=3))
        bodies = [req.body for req in server.generation_requests("/v1/chat/completions")]
    assert result.answer == "Balliol College"
    assert [c.doc_id for c in result.citations] == ["d2"]
    assert all(b["model"] == "served-model" for b in bodies)  # asked the server, not the embedded default
    assert all("structured_outputs" in b and not any(k.startswith("guided_") for k in b) for b in bodies)
    assert all(b["max_tokens"] <= 600 for b in bodies)
    assert result.spend.llm_calls == 3
