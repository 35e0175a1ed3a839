"""How leadline's generation parameters and completions map to the OpenAI-compatible wire format.

The request fields each server flavor understands (sampling, structured output, reasoning budget) and
the parsing of its responses and error statuses, kept apart from the HTTP client that sends them
(:mod:`leadline.llm.openai_client`).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from leadline.errors import LLMResponseError
from leadline.llm.base import Choice, GenerationParams, Usage
from leadline.llm.tokens import estimate_tokens

ServerFlavor = Literal["vllm", "llamacpp", "openai"]

BODY_EXCERPT = 2000
"""Characters of a bad response body kept in the error."""


# --- request bodies ---------------------------------------------------------------------------------


def sampling_fields(params: GenerationParams, flavor: ServerFlavor) -> dict[str, Any]:
    """Request fields for the sampling parameters, in the dialect of the server flavor."""
    fields: dict[str, Any] = {"max_tokens": params.max_tokens, "temperature": params.temperature}
    if params.stop:
        fields["stop"] = list(params.stop)
    if params.seed is not None:
        fields["seed"] = params.seed
    # A top-level sampling field of vLLM; other servers reject or silently drop it.
    if params.thinking_token_budget is not None and flavor == "vllm":
        fields["thinking_token_budget"] = params.thinking_token_budget
    return fields


def chat_schema_fields(schema: dict[str, Any], flavor: ServerFlavor) -> dict[str, Any]:
    """Request fields that constrain a chat answer to a JSON schema on this server flavor."""
    if flavor == "vllm":
        return {"structured_outputs": {"json": schema}}
    if flavor == "llamacpp":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": schema_name(schema), "schema": schema},
        }
    }


def completion_schema_fields(schema: dict[str, Any], flavor: ServerFlavor) -> dict[str, Any]:
    """Request fields that constrain a plain completion to a JSON schema on this server flavor."""
    if flavor == "llamacpp":
        return {"json_schema": schema}  # llama.cpp's /completion field, accepted on /v1/completions
    return chat_schema_fields(schema, flavor)


def schema_name(schema: dict[str, Any]) -> str:
    """A name for the schema the OpenAI format accepts (its title, sanitized; ``output`` without one)."""
    title = schema.get("title")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in title) if isinstance(title, str) else ""
    return name[:64] or "output"


# --- response bodies --------------------------------------------------------------------------------


def parse_choices(data: dict[str, Any], chat: bool, root: str) -> list[Choice]:
    """The choices of a response body; an LLMResponseError when it has none."""
    raw = data.get("choices")
    if not isinstance(raw, list) or not raw:
        raise LLMResponseError(
            f"the LLM server at {root} answered without choices",
            status_code=200,
            body=str(data)[:BODY_EXCERPT],
        )
    try:
        return [parse_choice(c, chat) for c in sorted(raw, key=lambda c: int(c.get("index", 0)))]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LLMResponseError(
            f"the LLM server at {root} answered with a malformed choice: {exc}",
            status_code=200,
            body=str(data)[:BODY_EXCERPT],
        ) from exc


def parse_choice(choice: dict[str, Any], chat: bool) -> Choice:
    """One choice: its text, reasoning, finish reason and token log-probabilities."""
    reasoning: str | None = None
    if chat:
        message = choice["message"]
        text = message.get("content") or ""
        # vLLM renamed reasoning_content to reasoning; llama.cpp and older vLLM still send the old name.
        for key in ("reasoning", "reasoning_content"):
            value = message.get(key)
            if isinstance(value, str) and value:
                reasoning = value
                break
    else:
        text = choice["text"] or ""
    if not isinstance(text, str):
        raise TypeError(f"choice text is {type(text).__name__}, not a string")
    finish = choice.get("finish_reason")
    return Choice(
        text=text,
        reasoning=reasoning,
        finish_reason=finish if isinstance(finish, str) else None,
        logprobs=parse_logprobs(choice.get("logprobs")),
        tokens=parse_logprob_tokens(choice.get("logprobs")),
    )


def parse_logprobs(block: Any) -> tuple[float, ...] | None:
    """Per-token log-probabilities from the chat shape (``content[].logprob``) or the legacy one."""
    if not isinstance(block, dict):
        return None
    content = block.get("content")
    if isinstance(content, list):
        return tuple(float(item["logprob"]) for item in content)
    token_logprobs = block.get("token_logprobs")
    if isinstance(token_logprobs, list):
        return tuple(float(v) for v in token_logprobs if v is not None)
    return None


def parse_logprob_tokens(block: Any) -> tuple[str, ...] | None:
    """The token texts that go with :func:`parse_logprobs`' values (chat ``content[].token``, legacy
    ``tokens``), aligned with them; None when the server sent none or they do not line up."""
    if not isinstance(block, dict):
        return None
    content = block.get("content")
    if isinstance(content, list):
        tokens = [t for item in content if isinstance(item, dict) and isinstance(t := item.get("token"), str)]
        return tuple(tokens) if len(tokens) == len(content) else None
    names, values = block.get("tokens"), block.get("token_logprobs")
    if isinstance(names, list) and isinstance(values, list) and len(names) == len(values):
        kept = [t for t, v in zip(names, values, strict=True) if v is not None]
        strings = [t for t in kept if isinstance(t, str)]
        return tuple(strings) if len(strings) == len(kept) else None
    return None


def parse_usage(data: dict[str, Any], prompt_text: str, choices: Sequence[Choice]) -> Usage:
    """The response's token usage, estimated from the texts when the server sent none."""
    usage = data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        prompt = usage.get("prompt_tokens")
        return Usage(prompt if isinstance(prompt, int) else 0, usage["completion_tokens"])
    # No usage from the server: the estimator keeps the ledger counting rather than at zero.
    completion = sum(estimate_tokens((c.reasoning or "") + c.text) for c in choices)
    return Usage(estimate_tokens(prompt_text), completion)


class HttpReply(Protocol):
    """What the client reads of a response: httpx's ``Response`` or the aiohttp wire's ``Reply``."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, case-insensitive."""
        ...

    @property
    def text(self) -> str:
        """The body as text."""
        ...

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        ...


def status_error(root: str, path: str, response: HttpReply) -> LLMResponseError:
    """An LLMResponseError for an HTTP error status, with the server's own message."""
    text = response.text
    detail = text[:300]
    try:
        payload = response.json()
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            detail = message[:300]
    except ValueError:
        pass
    return LLMResponseError(
        f"the LLM server at {root} answered {path} with HTTP {response.status_code}: {detail}",
        status_code=response.status_code,
        body=text[:BODY_EXCERPT],
    )


def retry_after_s(response: HttpReply) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe(exc: BaseException) -> str:
    """An exception's message, or its type name when it has none."""
    return str(exc) or type(exc).__name__


__all__ = [
    "BODY_EXCERPT",
    "HttpReply",
    "ServerFlavor",
    "chat_schema_fields",
    "completion_schema_fields",
    "describe",
    "parse_choice",
    "parse_choices",
    "parse_logprobs",
    "parse_usage",
    "retry_after_s",
    "sampling_fields",
    "schema_name",
    "status_error",
]
