"""A stand-in for a model that researches sensibly, for the fake OpenAI server when runs go in parallel.

It reads the loop's prompt and answers in the shape that prompt asks for (search queries, a next hop, a
short answer citing source 1, a report), built from the question's own words, cut to ``max_tokens``
words as a real server would. It lets benchmarks and end-to-end tests drive the real loop over real
HTTP without a model; it knows nothing, so its answers are only as right as the first source.
"""

from __future__ import annotations

import json
import re
from typing import Any

_QUESTION = re.compile(r"Question: (.+)")


def _question(prompt: str) -> str:
    found = _QUESTION.search(prompt)
    return found.group(1).strip() if found else "the question"


def research_reply(prompt: str) -> str:
    """The reply the loop expects to ``prompt`` (see the module doc)."""
    question = _question(prompt)
    words = re.findall(r"[A-Za-z0-9]+", question)
    query = " ".join(words[-6:]) or "question"
    if '"queries"' in prompt:
        return json.dumps({"queries": [query]})
    if '"next_query"' in prompt:
        return json.dumps(
            {"known": f"sources on {query}", "answer_so_far": "", "next_query": f"{query} details"}
        )
    if '"answer"' in prompt:
        return json.dumps({"answer": " ".join(words[-3:]) or "unknown", "sources": [1]})
    return f"## Summary\n\nWhat the sources say about {query} [1].\n"


def chat_responder(body: dict[str, Any]) -> str:
    """``FakeOpenAIServer(responder=...)``: the reply to a chat request, cut to its ``max_tokens`` words."""
    messages = body.get("messages") or [{}]
    reply = research_reply(str(messages[-1].get("content", "")))
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    words = reply.split(" ")
    return " ".join(words[: int(limit)]) if isinstance(limit, int) and len(words) > limit else reply


__all__ = ["chat_responder", "research_reply"]
