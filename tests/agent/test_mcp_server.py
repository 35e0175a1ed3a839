"""`leadline mcp`: the tools through the official SDK's client, in-process on fakes and over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")  # the mcp extra; `make test` installs it

from mcp import Client, MCPError, StdioServerParameters
from mcp_types import INVALID_PARAMS

from leadline import Researcher, Settings
from leadline.mcp_server import build_server
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM

from .conftest import QUESTION, sensible

REPO = Path(__file__).resolve().parents[2]


def _pythonpath() -> str:
    """This checkout first, then whatever the test run had (a subprocess imports the same code)."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def _server(docs: Any) -> tuple[Any, MemoryRunStore]:
    store = MemoryRunStore()
    researcher = Researcher(Settings(), llm=ScriptedLLM(sensible), search=FakeSearch(docs), store=store)
    return build_server(Settings(), researcher=researcher), store


def test_tools_are_listed_with_their_budget_schema(docs: Any) -> None:
    async def go() -> None:
        server, _ = _server(docs)
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"research", "report", "runs"}
            props = tools["research"].input_schema["properties"]
            assert set(props) == {"question", "budget"}
            budget = tools["research"].input_schema["$defs"]["BudgetArgs"]["properties"]
            assert set(budget) == {"tokens", "searches", "seconds", "thinks", "search_cost"}

    asyncio.run(go())


def test_research_returns_the_cited_answer_with_progress(docs: Any) -> None:
    async def go() -> None:
        server, store = _server(docs)
        progress: list[tuple[float, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))

        async with Client(server) as client:
            result = await client.call_tool(
                "research",
                {"question": QUESTION, "budget": {"tokens": 600, "searches": 3}},
                progress_callback=on_progress,
            )
            assert not result.is_error
            data = result.structured_content
            assert data is not None
            assert data["answer"] == "Balliol College"
            assert data["citations"][0]["doc_id"] == "d2"
            assert data["spend"]["searches"] <= 3
            run_id = data["run_id"]
            # every node of the loop reported progress, in increasing order
            assert [p[0] for p in progress] == list(range(1, len(progress) + 1))
            assert any("assess" in (m or "") for _, m in progress)
            assert any("answer" in (m or "") for _, m in progress)

            listed = (await client.call_tool("runs", {})).structured_content
            assert listed is not None
            assert [r["run_id"] for r in listed["runs"]] == [run_id]
            one = (await client.call_tool("runs", {"run_id": run_id})).structured_content
            assert one is not None
            assert one["run"]["status"] == "done"
            assert one["run"]["budget"]["tokens"] == 600
        assert store.get_run(run_id).answer == "Balliol College"

    asyncio.run(go())


def test_report_returns_markdown(docs: Any) -> None:
    async def go() -> None:
        server, _ = _server(docs)
        async with Client(server) as client:
            result = await client.call_tool("report", {"question": QUESTION})
            assert not result.is_error
            text = result.content[0].text  # type: ignore[union-attr]
            assert "Balliol College [" in text
            assert "evil.example" not in text  # the report node strips remote images

    asyncio.run(go())


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"question": QUESTION, "budget": {"tokens": -5, "searches": 2}}, "tokens"),
        ({"question": QUESTION, "budget": {"tokens": 100, "searches": 0}}, "searches"),
        ({"question": QUESTION, "budget": {"tokens": 100, "searches": 1, "thinks": -1}}, "thinks"),
        ({"question": QUESTION, "budget": {"tokens": 100, "searches": 1, "search_cost": -1}}, "search_cost"),
        ({"question": "   "}, "empty"),
    ],
)
def test_bad_arguments_are_mcp_errors_and_leave_no_run(
    docs: Any, arguments: dict[str, Any], needle: str
) -> None:
    async def go() -> None:
        server, store = _server(docs)
        async with Client(server) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("research", arguments)
            assert caught.value.code == INVALID_PARAMS
            assert needle in caught.value.message
        assert store.list_runs() == []

    asyncio.run(go())


def test_unknown_run_id_is_an_mcp_error(docs: Any) -> None:
    async def go() -> None:
        server, _ = _server(docs)
        async with Client(server) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("runs", {"run_id": "nope"})
            assert caught.value.code == INVALID_PARAMS
            with pytest.raises(MCPError):
                await client.call_tool("runs", {"limit": 0})

    asyncio.run(go())


@pytest.mark.slow
def test_stdio_server_answers_on_the_embedded_default(tmp_path: Path) -> None:
    """The real thing: `leadline mcp` as a subprocess over stdio, the packaged model, the demo corpus."""
    env = {**os.environ, "PYTHONPATH": _pythonpath()}  # LEADLINE_HOME: this test's own (tests/conftest.py)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "leadline.cli", "mcp"], env=env, cwd=str(tmp_path)
    )

    async def go() -> None:
        progress: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        # legacy: the initialize handshake waits read_timeout_seconds; the default 10 s discover probe can
        # expire while a loaded machine is still importing leadline
        async with Client(params, mode="legacy", read_timeout_seconds=600) as client:
            result = await client.call_tool(
                "research",
                {
                    "question": "Alvaro Mexia had a diplomatic mission with which tribe?",
                    "budget": {"tokens": 384, "searches": 2},
                },
                progress_callback=on_progress,
            )
            assert not result.is_error, result.content
            data = result.structured_content
            assert data is not None
            assert data["answer"].strip()
            assert data["citations"], "the embedded run cites its sources"
            assert data["spend"]["tokens"] <= 384 and data["spend"]["searches"] <= 2
            assert progress and progress[0].startswith("assess")
            with pytest.raises(MCPError):
                await client.call_tool("research", {"question": "x?", "budget": {"tokens": -1}})
            listed = (await client.call_tool("runs", {})).structured_content
            assert listed is not None
            assert [r["run_id"] for r in listed["runs"]] == [data["run_id"]]

    asyncio.run(go())


CORPUS = [
    {"id": "d1", "title": "The Selfish Gene", "text": "The Selfish Gene is a 1976 book by Richard Dawkins."},
    {"id": "d2", "title": "Richard Dawkins", "text": "Richard Dawkins studied at Balliol College, Oxford."},
]
REPLIES = [
    '{"queries": ["Selfish Gene author"]}',
    '{"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Richard Dawkins college"}',
    '{"answer": "Balliol College", "sources": [2]}',
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_leadline_mcp_over_stdio_and_streamable_http(transport: str, tmp_path: Path) -> None:
    """The `leadline mcp` command itself, as a subprocess, against a model server on 127.0.0.1."""
    import json
    import subprocess
    import time

    import httpx

    from leadline.testing.fake_openai_server import serve_fake_openai

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    with serve_fake_openai(flavor="vllm", replies=REPLIES * 2, model="served-model") as llm:
        env = {
            **os.environ,
            "PYTHONPATH": _pythonpath(),
            "LEADLINE_BASE_URL": llm.url,
            "LEADLINE_CORPUS": str(corpus),
        }
        command = [sys.executable, "-m", "leadline.cli", "mcp"]
        proc = None
        if transport == "stdio":
            target: Any = StdioServerParameters(command=command[0], args=command[1:], env=env)
        else:
            port = _free_port()
            proc = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE)
            target = f"http://127.0.0.1:{port}/mcp"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                try:
                    httpx.get(target, timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.3)

        async def go() -> None:
            progress: list[str] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(message or "")

            mode = "legacy" if transport == "stdio" else "auto"  # see the slow test above
            async with Client(target, mode=mode, read_timeout_seconds=120) as client:
                result = await client.call_tool(
                    "research",
                    {"question": QUESTION, "budget": {"tokens": 600, "searches": 3}},
                    progress_callback=on_progress,
                )
                assert not result.is_error, result.content
                assert result.structured_content is not None
                assert result.structured_content["answer"] == "Balliol College"
                assert progress[0].startswith("assess") and any(p.startswith("answer") for p in progress)
                with pytest.raises(MCPError) as caught:
                    await client.call_tool("research", {"question": QUESTION, "budget": {"tokens": -1}})
                assert caught.value.code == INVALID_PARAMS

        try:
            asyncio.run(go())
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
