"""An :class:`~leadline.llm.base.LLMClient` over HTTP, for OpenAI-compatible servers.

This is the production path: a vLLM server first, llama.cpp's server second, any other
OpenAI-compatible API third. The servers agree on the core of the API and disagree at its edges, so the
client knows three *flavors* and detects which one it talks to (once, from ``GET /v1/models``):

=============== ===================================== ======================================== ==========
flavor          structured output                     reasoning text / budget                  ``n``
=============== ===================================== ======================================== ==========
``vllm``        ``structured_outputs: {json: schema}`` ``message.reasoning`` (older:            native
                                                      ``reasoning_content``); top-level
                                                      ``thinking_token_budget``
``llamacpp``    ``response_format: {type: json_object, ``message.reasoning_content``            ignored: the
                schema}`` (``json_schema`` on                                                  client loops
                ``/v1/completions``)
``openai``      ``response_format: {type: json_schema, either field, if the server sends one     native
                json_schema: {name, schema}}``
=============== ===================================== ======================================== ==========

The removed ``guided_*`` fields of old vLLM releases are never sent. Every call has one total deadline
(``timeout_s``) across its retries; only 429, 5xx, connection errors and read timeouts are retried, with
exponential backoff, jitter and the server's ``Retry-After``; a read or write error on a pooled keep-alive
connection (the server closed it while it sat idle) is retried once, at once. Failures surface as
:class:`~leadline.errors.LLMConnectionError` (unreachable, deadline passed) or
:class:`~leadline.errors.LLMResponseError` (error status, malformed body). The API key travels only in the
``Authorization`` header; it is never in ``repr`` or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import httpx

from leadline.errors import ConfigError, LLMConnectionError, LLMResponseError
from leadline.llm.aiohttp_wire import AiohttpWire, Reply, uses_environment_proxies
from leadline.llm.base import Completion, GenerationParams, Message
from leadline.llm.openai_wire import (
    BODY_EXCERPT,
    ServerFlavor,
    chat_schema_fields,
    completion_schema_fields,
    describe,
    parse_choices,
    parse_usage,
    retry_after_s,
    sampling_fields,
    status_error,
)
from leadline.llm.tokens import estimate_tokens

logger = logging.getLogger(__name__)

Flavor = Literal["auto", "vllm", "llamacpp", "openai"]

_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError)
_STALE_CONNECTION_ERRORS = (httpx.ReadError, httpx.WriteError)
"""A keep-alive connection the server closed while it sat in the pool: retried once, at once."""


@dataclass(frozen=True)
class ServerInfo:
    """What :meth:`OpenAICompatibleClient.probe` found out about the server."""

    base_url: str
    flavor: ServerFlavor
    model: str


def api_root(base_url: str) -> str:
    """``http://host:8000`` from ``http://host:8000``, ``.../`` or ``.../v1``: paths are added per call."""
    root = base_url.strip().rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise ConfigError(f"the LLM base URL must start with http:// or https://, got {base_url!r}")
    return root.removesuffix("/v1")


class OpenAICompatibleClient:
    """An LLM client for a vLLM, llama.cpp or other OpenAI-compatible server.

    ``model=None`` takes the first model the server lists; ``flavor="auto"`` detects the server kind.
    Both are resolved on the first call (or by :meth:`probe`) and cached. Pass ``client`` to share an
    ``httpx.AsyncClient`` (it is then not closed by :meth:`aclose`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        flavor: Flavor = "auto",
        timeout_s: float = 300.0,
        max_retries: int = 4,
        client: httpx.AsyncClient | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s!r}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be zero or more, got {max_retries!r}")
        if flavor not in ("auto", "vllm", "llamacpp", "openai"):
            raise ConfigError(f"unknown server flavor {flavor!r}; use auto, vllm, llamacpp or openai")
        self._root = api_root(base_url)
        self._model = model
        self._api_key = api_key
        self._flavor: ServerFlavor | None = None if flavor == "auto" else flavor
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._owns_http = client is None
        self._http = client or self._new_http()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe_lock = asyncio.Lock()
        self._tokenize_available: bool | None = None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"OpenAICompatibleClient(base_url={self._root!r}, model={self._model!r}, "
            f"flavor={self._flavor!r}, api_key={key})"
        )

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return self._root

    @property
    def model_name(self) -> str:
        """The model's name; empty until the first call (or :meth:`probe`) when it was not given."""
        return self._model or ""

    @property
    def flavor(self) -> ServerFlavor | None:
        """The server kind; ``None`` until detected."""
        return self._flavor

    async def __aenter__(self) -> OpenAICompatibleClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        # Connections opened in an event loop that has since finished went with it; none to close here.
        """Close the HTTP client this instance opened (one passed in stays open)."""
        if self._owns_http and (self._loop is None or self._loop is asyncio.get_running_loop()):
            await self._http.aclose()
        self._loop = None

    # --- the LLMClient protocol ----------------------------------------------------------------------

    async def probe(self) -> ServerInfo:
        """Resolve the model and the flavor now (a cheap GET, cached); fails fast if the server is down."""
        deadline = self._deadline()
        async with self._deadline_guard(deadline):
            flavor, model = await self._resolve(deadline)
        return ServerInfo(self._root, flavor, model)

    async def chat(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One chat completion, with the server's dialect for structured output, ``n`` and reasoning."""
        deadline = self._deadline()
        async with self._deadline_guard(deadline):
            flavor, model = await self._resolve(deadline)
            body: dict[str, Any] = {"model": model, "messages": [m.to_dict() for m in messages]}
            body.update(sampling_fields(params, flavor))
            if params.logprobs:
                body["logprobs"] = True
            if params.json_schema is not None:
                body.update(chat_schema_fields(params.json_schema, flavor))
            prompt_text = "\n".join(m.content for m in messages)
            return await self._generate("/v1/chat/completions", body, params, flavor, prompt_text, deadline)

    async def complete(self, prompt: str, params: GenerationParams) -> Completion:
        """One plain completion on ``/v1/completions``."""
        deadline = self._deadline()
        async with self._deadline_guard(deadline):
            flavor, model = await self._resolve(deadline)
            body: dict[str, Any] = {"model": model, "prompt": prompt}
            body.update(sampling_fields(params, flavor))
            if params.logprobs:
                body["logprobs"] = 1  # the legacy API counts top alternatives; the sampled token comes too
            if params.json_schema is not None:
                body.update(completion_schema_fields(params.json_schema, flavor))
            return await self._generate("/v1/completions", body, params, flavor, prompt, deadline)

    def count_tokens(self, text: str) -> int:
        """The tiktoken estimate: a synchronous call must not block the event loop on the network.

        Use :meth:`count_tokens_exact` for the server's own tokenizer; the usage of each response is exact.
        """
        return estimate_tokens(text)

    async def count_tokens_exact(self, text: str) -> int:
        """Tokens of ``text`` under the served model's tokenizer (``POST /tokenize``), else the estimate."""
        deadline = self._deadline()
        async with self._deadline_guard(deadline):
            flavor, model = await self._resolve(deadline)
            if flavor == "openai" or self._tokenize_available is False:
                return estimate_tokens(text)
            body: dict[str, Any] = (
                {"content": text}
                if flavor == "llamacpp"
                else {"model": model, "prompt": text, "add_special_tokens": False}
            )
            try:
                data = await self._request_json("POST", "/tokenize", body, deadline)
            except LLMResponseError as exc:
                if exc.status_code in (404, 405, 501):
                    self._tokenize_available = False
                    return estimate_tokens(text)
                raise
            self._tokenize_available = True
            count, tokens = data.get("count"), data.get("tokens")
            if isinstance(count, int):
                return count
            if isinstance(tokens, list):
                return len(tokens)
            raise LLMResponseError(
                f"the LLM server at {self._root} answered /tokenize without a token list",
                status_code=200,
                body=str(data)[:BODY_EXCERPT],
            )

    # --- generation -----------------------------------------------------------------------------------

    async def _generate(
        self,
        path: str,
        body: dict[str, Any],
        params: GenerationParams,
        flavor: ServerFlavor,
        prompt_text: str,
        deadline: float,
    ) -> Completion:
        chat = path.endswith("chat/completions")
        wanted = max(1, params.n)
        # llama.cpp's server ignores n; asking for it anyway would only hide that in the request log.
        first_body = dict(body)
        if wanted > 1 and flavor != "llamacpp":
            first_body["n"] = wanted
        first = await self._request_json("POST", path, first_body, deadline)
        choices = list(parse_choices(first, chat, self._root))
        usage = parse_usage(first, prompt_text, choices)
        extra_call = 0
        # Top up one call at a time: llama.cpp always, other servers when they returned fewer than asked.
        while len(choices) < wanted:
            extra_call += 1
            more_body = dict(body)
            if params.seed is not None:
                more_body["seed"] = params.seed + extra_call  # the same seed would repeat the first sample
            more = await self._request_json("POST", path, more_body, deadline)
            new = parse_choices(more, chat, self._root)
            choices.extend(new[: wanted - len(choices)])
            usage = usage + parse_usage(more, prompt_text, new)
        model = first.get("model")
        return Completion(
            choices=tuple(choices[:wanted]),
            usage=usage,
            model=model if isinstance(model, str) and model else (self._model or ""),
            raw=first,
        )

    # --- model and flavor -----------------------------------------------------------------------------

    async def _resolve(self, deadline: float) -> tuple[ServerFlavor, str]:
        if self._flavor is not None and self._model is not None:
            return self._flavor, self._model
        async with self._bind_loop()._probe_lock:
            if self._flavor is None or self._model is None:
                entries = await self._list_models(deadline)
                if self._model is None:
                    if not entries or not isinstance(entries[0].get("id"), str):
                        raise LLMResponseError(
                            f"the LLM server at {self._root} lists no model; pass model= explicitly",
                            status_code=200,
                        )
                    self._model = cast(str, entries[0]["id"])
                if self._flavor is None:
                    self._flavor = await self._detect_flavor(entries, deadline)
                logger.debug("LLM server %s: flavor %s, model %s", self._root, self._flavor, self._model)
        assert self._flavor is not None and self._model is not None
        return self._flavor, self._model

    async def _list_models(self, deadline: float) -> list[dict[str, Any]]:
        try:
            data = await self._request_json("GET", "/v1/models", None, deadline)
        except LLMResponseError as exc:
            if exc.status_code in (404, 405) and self._model is not None:
                return []  # a server without the listing still serves a model named explicitly
            raise
        entries = data.get("data")
        if not isinstance(entries, list):
            raise LLMResponseError(
                f"the LLM server at {self._root} answered /v1/models without a data list",
                status_code=200,
                body=str(data)[:BODY_EXCERPT],
            )
        return [e for e in entries if isinstance(e, dict)]

    async def _detect_flavor(self, entries: list[dict[str, Any]], deadline: float) -> ServerFlavor:
        owners = {str(e.get("owned_by", "")).lower() for e in entries}
        if "vllm" in owners:
            return "vllm"
        if "llamacpp" in owners:
            return "llamacpp"
        # Proxies rewrite owned_by; the servers' own endpoints still tell (one GET each, not retried).
        props = await self._optional_get("/props", deadline)
        if props is not None and ("default_generation_settings" in props or "build_info" in props):
            return "llamacpp"
        version = await self._optional_get("/version", deadline)
        if version is not None and isinstance(version.get("version"), str):
            return "vllm"
        return "openai"

    async def _optional_get(self, path: str, deadline: float) -> dict[str, Any] | None:
        try:
            return await self._request_json("GET", path, None, deadline, retry=False)
        except (LLMResponseError, LLMConnectionError):
            return None

    # --- transport ------------------------------------------------------------------------------------

    def _new_http(self) -> httpx.AsyncClient | AiohttpWire:
        connect_s = min(10.0, self._timeout_s)
        if uses_environment_proxies():
            return httpx.AsyncClient(timeout=httpx.Timeout(self._timeout_s, connect=connect_s))
        # aiohttp: a third of httpx's CPU per call (leadline/llm/aiohttp_wire.py)
        return AiohttpWire(timeout_s=self._timeout_s, connect_s=connect_s)

    def _bind_loop(self) -> OpenAICompatibleClient:
        """Follow the running event loop: synchronous callers run each call in a new ``asyncio.run``.

        Pooled connections and the lock belong to the loop they were made in, so an owned HTTP client
        is replaced when the loop changes (a shared one is the caller's to manage).
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._owns_http:
                self._http = self._new_http()
            self._probe_lock = asyncio.Lock()
            self._loop = loop
        return self

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._timeout_s

    def _deadline_guard(self, deadline: float) -> _DeadlineGuard:
        return _DeadlineGuard(deadline, self._root, self._timeout_s)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _request_json(
        self, method: str, path: str, body: dict[str, Any] | None, deadline: float, *, retry: bool = True
    ) -> dict[str, Any]:
        url = self._root + path
        attempts = 1 + (self._max_retries if retry else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._send(method, url, body)
            except _RETRYABLE_ERRORS as exc:
                error: LLMConnectionError | LLMResponseError = LLMConnectionError(
                    f"cannot reach the LLM server at {self._root}: {describe(exc)}"
                )
                if last:
                    raise error from exc
                await self._wait_before_retry(
                    attempt, None, deadline, error, f"{method} {path}: {describe(exc)}"
                )
                continue
            except httpx.HTTPError as exc:
                raise LLMConnectionError(
                    f"cannot reach the LLM server at {self._root}: {describe(exc)}"
                ) from exc
            status = response.status_code
            if status == 429 or status >= 500:
                error = status_error(self._root, path, response)
                if last:
                    raise error
                await self._wait_before_retry(
                    attempt, retry_after_s(response), deadline, error, f"{method} {path}: HTTP {status}"
                )
                continue
            if status >= 400:
                raise status_error(self._root, path, response)
            try:
                data = response.json()
            except ValueError as exc:
                raise LLMResponseError(
                    f"the LLM server at {self._root} answered {path} with a body that is not JSON",
                    status_code=status,
                    body=response.text[:BODY_EXCERPT],
                ) from exc
            if not isinstance(data, dict):
                raise LLMResponseError(
                    f"the LLM server at {self._root} answered {path} with JSON that is not an object",
                    status_code=status,
                    body=response.text[:BODY_EXCERPT],
                )
            return data
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(self, method: str, url: str, body: dict[str, Any] | None) -> httpx.Response | Reply:
        """One request; a read or write error on a pooled keep-alive connection (the server closed it
        while it sat idle, as the request went out) is retried once at once: the pool has dropped that
        connection, so the retry goes out on another. A second failure is the caller's to handle."""
        http = self._bind_loop()._http
        try:
            return await http.request(method, url, json=body, headers=self._headers())
        except _STALE_CONNECTION_ERRORS as exc:
            logger.info(
                "LLM call %s %s: %s on a pooled connection; retrying once", method, url, describe(exc)
            )
            return await http.request(method, url, json=body, headers=self._headers())

    async def _wait_before_retry(
        self,
        attempt: int,
        retry_after: float | None,
        deadline: float,
        error: LLMConnectionError | LLMResponseError,
        what: str,
    ) -> None:
        backoff = min(self._max_backoff_s, self._backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
        delay = max(backoff, retry_after or 0.0)
        if asyncio.get_running_loop().time() + delay >= deadline:
            raise error  # waiting as asked would pass the deadline: fail now, with the real cause
        logger.info("LLM call %s; retry %d in %.2fs", what, attempt + 1, delay)
        await asyncio.sleep(delay)


class _DeadlineGuard:
    """``asyncio.timeout_at`` whose expiry becomes an :class:`LLMConnectionError` naming the server."""

    def __init__(self, deadline: float, root: str, timeout_s: float) -> None:
        self._timeout = asyncio.timeout_at(deadline)
        self._root = root
        self._timeout_s = timeout_s

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            raise LLMConnectionError(
                f"cannot reach the LLM server at {self._root}: no answer within {self._timeout_s:g}s"
            ) from timeout
