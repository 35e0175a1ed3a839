"""Batch fixtures: an empty database per test (SQLite, and PostgreSQL when reachable), a tiny corpus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.llm.base import GenerationParams, Message
from leadline.testing.research_responder import research_reply
from leadline.tools.base import Document


def sensible_reply(messages: list[Message], params: GenerationParams) -> str:
    """A scripted model that answers the loop's prompts sensibly (as the fake server's responder does)."""
    return research_reply(messages[-1].content)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'leadline.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def docs() -> list[Document]:
    return [
        Document(
            doc_id="d1", title="The Selfish Gene", text="The Selfish Gene is a 1976 book by Richard Dawkins."
        ),
        Document(
            doc_id="d2", title="Richard Dawkins", text="Richard Dawkins studied at Balliol College, Oxford."
        ),
        Document(doc_id="d3", title="Cats", text="Cats are small domesticated animals."),
    ]


@pytest.fixture
def corpus(tmp_path: Path, docs: list[Document]) -> str:
    """A local corpus file (JSONL) the real BM25 index is built from."""
    import json

    path = tmp_path / "corpus.jsonl"
    extra = [
        {"id": f"x{i}", "title": f"Topic {i}", "text": f"Topic {i} is about subject number {i} and Oxford."}
        for i in range(20)
    ]
    rows = [{"id": d.doc_id, "title": d.title, "text": d.text} for d in docs] + extra
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def fake_server() -> Iterator[object]:
    """The fake OpenAI-compatible server over real HTTP on 127.0.0.1, answering like a sensible model."""
    from leadline.testing.fake_openai_server import serve_fake_openai
    from leadline.testing.research_responder import chat_responder

    with serve_fake_openai(responder=chat_responder) as server:
        yield server
