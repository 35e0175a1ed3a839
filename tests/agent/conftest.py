"""Fixtures for loop tests: a tiny two-hop corpus and a scripted model that researches it sensibly."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from leadline.llm.base import GenerationParams, Message
from leadline.testing.pytest_plugin import no_real_io  # noqa: F401  (a fixture, used by name)
from leadline.tools.base import Document

QUESTION = "Which college did the author of The Selfish Gene attend?"

OFFLINE_MODULES = frozenset({"test_loop", "test_batch", "test_tuned"})
"""Unit tests of the loop on fakes: a real model load or network connection in them is a failure."""


@pytest.fixture(autouse=True)
def _offline_unit_tests(request: pytest.FixtureRequest) -> None:
    if request.module.__name__.rsplit(".", 1)[-1] in OFFLINE_MODULES:
        request.getfixturevalue("no_real_io")


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


def sensible(messages: Sequence[Message], params: GenerationParams) -> str:
    prompt = messages[-1].content
    if '"queries"' in prompt:
        return json.dumps({"queries": ["Selfish Gene author"]})
    if '"next_query"' in prompt:
        return json.dumps(
            {"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Richard Dawkins college"}
        )
    if '"answer"' in prompt:
        return json.dumps({"answer": "Balliol College", "sources": [2]})
    return "## Summary\n\nDawkins studied at Balliol College [2].\n\n![tracker](http://evil.example/x.png)"
