"""Language models behind one protocol: OpenAI-compatible servers, llama.cpp in-process, vLLM in-process.

The engines import their heavy dependencies only when built, so importing this package is cheap.
"""

from leadline.llm.base import Choice, Completion, GenerationParams, LLMClient, Message, Usage
from leadline.llm.llama_cpp_engine import LlamaCppEngine
from leadline.llm.openai_client import OpenAICompatibleClient
from leadline.llm.vllm_engine import VllmEngine

__all__ = [
    "Choice",
    "Completion",
    "GenerationParams",
    "LLMClient",
    "LlamaCppEngine",
    "Message",
    "OpenAICompatibleClient",
    "Usage",
    "VllmEngine",
]
