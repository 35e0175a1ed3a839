"""Fakes for testing research loops: scripted LLMs, in-memory search and an in-memory run store."""

from leadline.testing.memory_store import MemoryRunStore
from leadline.testing.scripted import FakeSearch, LLMCall, ScriptedLLM

__all__ = ["FakeSearch", "LLMCall", "MemoryRunStore", "ScriptedLLM"]
