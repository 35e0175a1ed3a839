"""The LLM client's aiohttp wire, against real servers on loopback: answers, errors, connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from leadline.errors import LLMConnectionError
from leadline.llm.aiohttp_wire import AiohttpWire, uses_environment_proxies
from leadline.llm.base import GenerationParams, Message
from leadline.llm.openai_client import OpenAICompatibleClient
from leadline.testing.fake_openai_server import serve_fake_openai

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
HELLO = [Message("user", "hi")]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Seen: yes\r\n\r\n{"ok": "1"}'  # noqa: E501


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server on 127.0.0.1 that calls ``handle(reader, writer, n)`` for the n-th request
    (counted over all connections); yields its URL and the number of connections accepted so far."""
    connections = [0]
    requests = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next((int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length")), 0)
                await reader.readexactly(length)
                requests[0] += 1
                await handle(reader, writer, requests[0])
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


async def answer(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
    writer.write(OK)
    await writer.drain()


@pytest.mark.anyio
async def test_a_json_request_and_its_whole_answer() -> None:
    with serve_fake_openai() as server:
        wire = AiohttpWire(timeout_s=10, connect_s=5)
        try:
            reply = await wire.request("POST", f"{server.url}/v1/chat/completions", json=BODY)
        finally:
            await wire.aclose()
    assert reply.status_code == 200
    assert reply.headers.get("CONTENT-TYPE", "").startswith("application/json")  # case-insensitive
    assert reply.json()["choices"][0]["message"]["content"]
    assert reply.text.startswith("{")
    sent = server.generation_requests()[0]
    assert sent.body["messages"] == BODY["messages"]


@pytest.mark.anyio
async def test_one_caller_keeps_one_connection_and_calls_at_once_each_get_one() -> None:
    async with raw_server(answer) as (url, connections):
        wire = AiohttpWire(timeout_s=10, connect_s=5)
        try:
            for _ in range(5):
                assert (await wire.request("GET", url)).json() == {"ok": "1"}
            assert connections[0] == 1
            replies = await asyncio.gather(*(wire.request("GET", url) for _ in range(8)))
            assert all(r.headers["x-seen"] == "yes" for r in replies)
            assert connections[0] == 8  # the kept one and seven new: no cap on connections
        finally:
            await wire.aclose()


@pytest.mark.anyio
async def test_a_refused_connection_is_httpx_connect_error_and_the_client_says_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wire = AiohttpWire(timeout_s=10, connect_s=5)
    with pytest.raises(httpx.ConnectError):
        await wire.request("GET", f"http://127.0.0.1:{port}/v1/models")
    await wire.aclose()
    client = OpenAICompatibleClient(f"http://127.0.0.1:{port}", max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMConnectionError, match="cannot reach the LLM server"):
        await client.chat(HELLO, GenerationParams())
    await client.aclose()


@pytest.mark.anyio
async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def hang(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _n: int) -> None:
        await asyncio.sleep(5)

    async with raw_server(hang) as (url, _connections):
        wire = AiohttpWire(timeout_s=0.3, connect_s=5)
        with pytest.raises(httpx.ReadTimeout):
            await wire.request("GET", url)
        await wire.aclose()


@pytest.mark.anyio
async def test_a_kept_connection_the_server_drops_is_a_read_error_and_the_client_retries_once() -> None:
    # the second request arrives on the kept-alive connection and the server closes it unanswered (as a
    # server closing an idle connection at that moment does): httpx's ReadError, which the client retries
    # at once on a new connection
    async def drop_second(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 2:
            writer.close()
            return
        body = json.dumps(
            {
                "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()

    async with raw_server(drop_second) as (url, connections):
        wire = AiohttpWire(timeout_s=10, connect_s=5)
        await wire.request("POST", url, json=BODY)
        with pytest.raises(httpx.ReadError):  # aiohttp itself would send a GET again, not a POST
            await wire.request("POST", url, json=BODY)
        await wire.aclose()

    async with raw_server(drop_second) as (url, connections):
        client = OpenAICompatibleClient(url, model="m", flavor="vllm", max_retries=0)
        first = await client.chat(HELLO, GenerationParams())
        second = await client.chat(HELLO, GenerationParams())  # dropped, then sent again at once
        await client.aclose()
        assert first.text == second.text == "fine"
        assert connections[0] == 2


def test_each_event_loop_gets_its_own_session_and_each_is_closed_with_its_loop(
    recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    import gc

    gc.collect()  # earlier tests' garbage is not this test's to judge
    recwarn.clear()
    with serve_fake_openai() as server:
        wire = AiohttpWire(timeout_s=10, connect_s=5)
        sessions = []

        async def call() -> None:
            await wire.request("POST", f"{server.url}/v1/chat/completions", json=BODY)
            sessions.append(wire._session)

        asyncio.run(call())
        asyncio.run(call())  # a new loop: a new session; the first loop closed its own on the way out
        assert sessions[0] is not sessions[1]
        assert all(s is not None and s.closed for s in sessions)
        gc.collect()
    unclosed = [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]
    assert not [m for m in unclosed if "client session" in m or "connector" in m], unclosed
    assert "Unclosed" not in caplog.text


def test_a_proxy_in_the_environment_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not uses_environment_proxies()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert uses_environment_proxies()
    client = OpenAICompatibleClient("http://127.0.0.1:9")
    assert isinstance(client._http, httpx.AsyncClient)  # httpx honours every form of proxy setting
