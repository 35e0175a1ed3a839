"""The closed-book baseline: the same model answers without any search, for comparison."""

from __future__ import annotations

from dataclasses import dataclass

from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.prompts import ANSWER_SCHEMA, closed_book_messages
from leadline.llm.base import GenerationParams, LLMClient, Usage


@dataclass(frozen=True)
class ClosedBookAnswer:
    """The closed-book baseline's answer and its token usage."""

    answer: str
    usage: Usage


async def closed_book_answer(llm: LLMClient, question: str, *, max_tokens: int = 48) -> ClosedBookAnswer:
    """Answer from the model's own knowledge, no search (the baseline research is compared with)."""
    completion = await llm.chat(
        closed_book_messages(question), GenerationParams(max_tokens=max_tokens, json_schema=ANSWER_SCHEMA)
    )
    return ClosedBookAnswer(answer=answer_text(completion.text), usage=completion.usage)


def answer_text(reply: str) -> str:
    """The answer of a closed-book reply: its JSON ``answer``, or its first line when it is no JSON."""
    parsed = parse_json_object(reply)
    return as_text(parsed.get("answer")) if parsed else reply.strip().split("\n")[0]
