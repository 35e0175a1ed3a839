"""A real HTTP server that answers like vLLM, llama.cpp's server or a plain OpenAI-compatible API.

The HTTP client's contract is about bytes on a socket: which fields it sends, how it reads each server's
answer, how it retries and gives up. So its tests run against this ASGI app (starlette) served by uvicorn
on ``127.0.0.1`` in a thread, not against a mocked transport. Replies are scripted; every request is
recorded in :attr:`FakeOpenAIServer.requests`; faults (429 with ``Retry-After``, 500, a malformed body,
a slow answer) are queued for the next generation requests. Users can test their own code with it too::

    with serve_fake_openai(flavor="llamacpp", replies=["Paris"]) as server:
        client = OpenAICompatibleClient(server.url)
        ...
        assert server.requests[-1].body["messages"][0]["content"] == "..."

Needs the ``dev`` extra (starlette, uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from leadline.errors import ConfigError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

FakeFlavor = Literal["vllm", "llamacpp", "openai"]
_GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions", "/tokenize")


@dataclass(frozen=True)
class ScriptedReply:
    """One choice the fake server will return; plain strings in ``replies`` become these."""

    text: str
    reasoning: str | None = None
    finish_reason: str = "stop"
    logprobs: tuple[float, ...] | None = None
    """Per-token log-probabilities when the client asks for them; default -0.25 per whitespace token."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The parsed JSON body, or ``None`` for a GET or a body that is not JSON."""


@dataclass
class _Fault:
    kind: Literal["status", "malformed", "slow"]
    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass
class FakeOpenAIServer:
    """The fake server; use :func:`serve_fake_openai` to run one for the length of a ``with`` block."""

    flavor: FakeFlavor = "vllm"
    model: str = "fake-model"
    reasoning_field: str | None = None
    """Name of the message field that carries reasoning; by default ``reasoning`` for vLLM, else
    ``reasoning_content`` (llama.cpp and vLLM before the rename)."""
    ignore_n: bool | None = None
    """Return one choice whatever ``n`` asks, as llama.cpp's server does; by default only for llamacpp."""
    delay_s: float = 0.0
    """Seconds every generation request waits before answering."""
    responder: Callable[[dict[str, Any]], str] | None = None
    """Answers a chat request from its JSON body (instead of the scripted replies): for runs in parallel,
    whose calls arrive in no fixed order."""
    owned_by: str | None = None
    """``owned_by`` of the model listing; by default what the real server sends (a proxy may rewrite it)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _replies: deque[ScriptedReply] = field(default_factory=deque)
    _faults: deque[_Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0
    _server: Any = None
    _thread: threading.Thread | None = None
    _socket: socket.socket | None = None
    port: int = 0

    # --- scripting -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL (loopback)."""
        return f"http://127.0.0.1:{self.port}"

    def add_replies(self, *replies: str | ScriptedReply) -> None:
        """Queue replies (text or ScriptedReply) for the next requests."""
        with self._lock:
            self._replies.extend(r if isinstance(r, ScriptedReply) else ScriptedReply(r) for r in replies)

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | str | None = None) -> None:
        """Answer the next ``times`` generation requests with ``status`` (and ``Retry-After``)."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.extend(_Fault("status", status=status, retry_after=header) for _ in range(times))

    def malformed_next(self, times: int = 1) -> None:
        """Answer the next ``times`` generation requests with 200 and a body that is not JSON."""
        with self._lock:
            self._faults.extend(_Fault("malformed") for _ in range(times))

    def slow_next(self, delay_s: float, times: int = 1) -> None:
        """Wait ``delay_s`` before answering the next ``times`` generation requests."""
        with self._lock:
            self._faults.extend(_Fault("slow", delay_s=delay_s) for _ in range(times))

    def generation_requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests to the generation endpoints (or to ``path``)."""
        paths = (path,) if path else _GENERATION_PATHS[:2]
        return [r for r in self.requests if r.path in paths]

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a loopback port in a background thread."""
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - dev extra missing
            raise ConfigError("the fake OpenAI server needs uvicorn: pip install 'leadline[dev]'") from exc
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
            # idle keep-alive connections stay open as behind a proxy: uvicorn's 5 s default closes
            # them under load just as a pooled client reuses them (a ReadError, not the server's fault)
            timeout_keep_alive=75,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    # --- the app ---------------------------------------------------------------------------------------

    def _app(self) -> Any:
        try:
            from starlette.applications import Starlette
            from starlette.routing import Route
        except ImportError as exc:  # pragma: no cover - dev extra missing
            raise ConfigError("the fake OpenAI server needs starlette: pip install 'leadline[dev]'") from exc
        routes = [
            Route("/health", self._health, methods=["GET"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
        ]
        if self.flavor == "vllm":
            routes += [Route("/version", self._version, methods=["GET"])]
        if self.flavor == "llamacpp":
            routes += [Route("/props", self._props, methods=["GET"])]
        if self.flavor != "openai":
            routes += [Route("/tokenize", self._tokenize, methods=["POST"])]
        # Requests to endpoints this flavor lacks are recorded too, then answered 404 like the real server.
        routes += [Route("/{path:path}", self._not_found, methods=["GET", "POST"])]
        return Starlette(routes=routes)

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(
            RecordedRequest(request.method, request.url.path, dict(request.headers.items()), body)
        )
        return body

    async def _fault_response(self) -> Response | None:
        from starlette.responses import JSONResponse, Response

        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        delay = self.delay_s + (fault.delay_s if fault and fault.kind == "slow" else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault is None or fault.kind == "slow":
            return None
        if fault.kind == "malformed":
            return Response('{"choices": [{"index": 0, "message": ', media_type="application/json")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        return JSONResponse(
            {"error": {"message": f"scripted failure {fault.status}", "type": "fake", "code": fault.status}},
            status_code=fault.status,
            headers=headers,
        )

    def _next_reply(self) -> ScriptedReply:
        with self._lock:
            self._counter += 1
            return self._replies.popleft() if self._replies else ScriptedReply(f"reply {self._counter}")

    def _reasoning_key(self) -> str:
        if self.reasoning_field:
            return self.reasoning_field
        return "reasoning" if self.flavor == "vllm" else "reasoning_content"

    def _choice_count(self, body: dict[str, Any]) -> int:
        ignore = self.ignore_n if self.ignore_n is not None else self.flavor == "llamacpp"
        return 1 if ignore else max(1, int(body.get("n") or 1))

    async def _not_found(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        await self._record(request)
        return JSONResponse({"error": {"message": "Not Found", "code": 404}}, status_code=404)

    async def _health(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        await self._record(request)
        return JSONResponse({"status": "ok"} if self.flavor == "llamacpp" else {})

    async def _models(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        await self._record(request)
        owner = self.owned_by or {"vllm": "vllm", "llamacpp": "llamacpp", "openai": "system"}[self.flavor]
        entry: dict[str, Any] = {
            "id": self.model,
            "object": "model",
            "created": 1700000000,
            "owned_by": owner,
        }
        if self.flavor == "vllm":
            entry |= {"root": self.model, "parent": None, "max_model_len": 4096}
        return JSONResponse({"object": "list", "data": [entry]})

    async def _version(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        await self._record(request)
        return JSONResponse({"version": "0.0.0-fake"})

    async def _props(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        await self._record(request)
        return JSONResponse(
            {
                "default_generation_settings": {"n_ctx": 4096, "params": {"temperature": 0.8}},
                "total_slots": 1,
                "model_path": f"/models/{self.model}.gguf",
                "build_info": "b0-fake",
            }
        )

    async def _tokenize(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        body = await self._record(request) or {}
        if (fault := await self._fault_response()) is not None:
            return fault
        if self.flavor == "llamacpp":
            return JSONResponse({"tokens": _token_ids(str(body.get("content", "")))})
        tokens = _token_ids(str(body.get("prompt", "")))
        return JSONResponse(
            {"count": len(tokens), "max_model_len": 4096, "tokens": tokens, "token_strs": None}
        )

    async def _chat(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        body = await self._record(request) or {}
        if (fault := await self._fault_response()) is not None:
            return fault
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        choices, completion_tokens = [], 0
        for index in range(self._choice_count(body)):
            reply = ScriptedReply(self.responder(body)) if self.responder is not None else self._next_reply()
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            if reply.reasoning is not None:
                message[self._reasoning_key()] = reply.reasoning
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "logprobs": _chat_logprobs(reply) if body.get("logprobs") else None,
                "finish_reason": reply.finish_reason,
            }
            if self.flavor == "vllm":
                choice["stop_reason"] = None
            choices.append(choice)
            completion_tokens += _count(reply.text) + _count(reply.reasoning or "")
        return JSONResponse(self._envelope("chat.completion", "chatcmpl", choices, prompt, completion_tokens))

    async def _completions(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        body = await self._record(request) or {}
        if (fault := await self._fault_response()) is not None:
            return fault
        choices, completion_tokens = [], 0
        for index in range(self._choice_count(body)):
            reply = self._next_reply()
            choices.append(
                {
                    "index": index,
                    "text": reply.text,
                    "logprobs": _legacy_logprobs(reply) if body.get("logprobs") is not None else None,
                    "finish_reason": reply.finish_reason,
                }
            )
            completion_tokens += _count(reply.text)
        prompt = str(body.get("prompt", ""))
        return JSONResponse(self._envelope("text_completion", "cmpl", choices, prompt, completion_tokens))

    def _envelope(
        self, kind: str, prefix: str, choices: list[dict[str, Any]], prompt: str, completion_tokens: int
    ) -> dict[str, Any]:
        prompt_tokens = _count(prompt)
        return {
            "id": f"{prefix}-fake{self._counter}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _count(text: str) -> int:
    return len(text.split())


def _token_ids(text: str) -> list[int]:
    return [zlib.crc32(word.encode()) % 50000 for word in text.split()]


def _logprob_values(reply: ScriptedReply) -> list[tuple[str, float]]:
    """One token a word, each after the first with its leading space, as real tokenizers give them
    (so the tokens spell the text)."""
    words = reply.text.split() or [""]
    words = words[:1] + [f" {w}" for w in words[1:]]
    values = list(reply.logprobs) if reply.logprobs is not None else [-0.25] * len(words)
    words = (words + [""] * len(values))[: len(values)]
    return list(zip(words, values, strict=True))


def _chat_logprobs(reply: ScriptedReply) -> dict[str, Any]:
    return {
        "content": [
            {"token": word, "logprob": value, "bytes": list(word.encode()), "top_logprobs": []}
            for word, value in _logprob_values(reply)
        ]
    }


def _legacy_logprobs(reply: ScriptedReply) -> dict[str, Any]:
    pairs = _logprob_values(reply)
    offsets, position = [], 0
    for word, _ in pairs:
        offsets.append(position)
        position += len(word)
    return {
        "text_offset": offsets,
        "token_logprobs": [value for _, value in pairs],
        "tokens": [word for word, _ in pairs],
        "top_logprobs": [{word: value} for word, value in pairs],
    }


@contextmanager
def serve_fake_openai(
    *,
    flavor: FakeFlavor = "vllm",
    replies: Sequence[str | ScriptedReply] = (),
    model: str = "fake-model",
    reasoning_field: str | None = None,
    ignore_n: bool | None = None,
    delay_s: float = 0.0,
    owned_by: str | None = None,
    responder: Callable[[dict[str, Any]], str] | None = None,
) -> Iterator[FakeOpenAIServer]:
    """Run a :class:`FakeOpenAIServer` on a free port of 127.0.0.1 for the ``with`` block."""
    server = FakeOpenAIServer(
        flavor=flavor,
        model=model,
        reasoning_field=reasoning_field,
        ignore_n=ignore_n,
        delay_s=delay_s,
        owned_by=owned_by,
        responder=responder,
    )
    server.add_replies(*replies)
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["FakeOpenAIServer", "RecordedRequest", "ScriptedReply", "serve_fake_openai"]
