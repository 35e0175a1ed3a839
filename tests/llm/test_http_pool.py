"""The LLM client's sharded transport, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from leadline.llm.http_pool import SHARDS, ShardedTransport
from leadline.testing.fake_openai_server import serve_fake_openai


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.anyio
async def test_one_caller_at_a_time_keeps_to_one_pool_and_one_connection() -> None:
    with serve_fake_openai() as server:
        transport = ShardedTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(5):
                response = await client.post(f"{server.url}/v1/chat/completions", json=BODY)
                assert response.status_code == 200
                assert transport.in_flight == (0,) * SHARDS
            first = transport._shards[0]
            assert first is not None and all(s is None for s in transport._shards[1:])
            assert len(first._pool.connections) == 1


@pytest.mark.anyio
async def test_calls_at_once_are_spread_over_the_pools_and_all_come_back() -> None:
    with serve_fake_openai(delay_s=0.8) as server:
        transport = ShardedTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            calls = [
                asyncio.ensure_future(client.post(f"{server.url}/v1/chat/completions", json=BODY))
                for _ in range(2 * SHARDS)
            ]
            await asyncio.sleep(0.3)  # all sent, none answered yet
            assert transport.in_flight == (2,) * SHARDS
            responses = await asyncio.gather(*calls)
        assert all(r.status_code == 200 and r.json()["choices"] for r in responses)
        assert transport.in_flight == (0,) * SHARDS
        assert len(server.generation_requests()) == 2 * SHARDS


@pytest.mark.anyio
async def test_a_call_that_fails_is_no_longer_counted() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = ShardedTransport(shards=2)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/v1/models")
    assert transport.in_flight == (0, 0)


def test_a_transport_needs_a_pool() -> None:
    with pytest.raises(ValueError):
        ShardedTransport(shards=0)
