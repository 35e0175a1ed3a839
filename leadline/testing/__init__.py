"""Fakes for testing research loops: scripted LLMs, in-memory search and pages, an in-memory run store,
and a switch (:func:`no_real_io`) that fails a test which loads a real model or reaches the network."""

from leadline.testing.fake_fetcher import FakeFetcher
from leadline.testing.isolation import RealResourceUsed, no_real_io
from leadline.testing.memory_store import MemoryRunStore
from leadline.testing.scripted import FakeSearch, LLMCall, ScriptedLLM

__all__ = [
    "FakeFetcher",
    "FakeSearch",
    "LLMCall",
    "MemoryRunStore",
    "RealResourceUsed",
    "ScriptedLLM",
    "no_real_io",
]
