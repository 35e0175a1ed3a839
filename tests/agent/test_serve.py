"""The graph `langgraph dev` serves (langgraph.json): the research loop itself, run by a real API server.

The server loads ``leadline/serve.py:make_graph`` by file path and calls it as a graph factory; these
tests do the same: first by path in-process (the factory's reading mode), then through `langgraph dev`
on loopback with a `langgraph-sdk` client, against an OpenAI-compatible fake on 127.0.0.1 (fast) and on
the embedded default model (slow).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadline import Settings
from leadline.testing.fake_openai_server import serve_fake_openai
from leadline.wiring import make_store

from .conftest import QUESTION

pytest.importorskip("langgraph_api")  # the studio extra; `make test` installs it
from langgraph_sdk import get_client

REPO = Path(__file__).resolve().parents[2]
NODES = ["plan", "search", "think", "answer", "report"]
"""The graph's nodes: plan also assesses; decide runs at the end of plan, search (with read) and think."""
REPLIES = [
    json.dumps({"queries": ["Selfish Gene author"]}),
    json.dumps({"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Richard Dawkins college"}),
    json.dumps({"answer": "Balliol College", "sources": [2]}),
]
CORPUS = [
    {"id": "d1", "title": "The Selfish Gene", "text": "The Selfish Gene is a 1976 book by Richard Dawkins."},
    {"id": "d2", "title": "Richard Dawkins", "text": "Richard Dawkins studied at Balliol College, Oxford."},
    {"id": "d3", "title": "Cats", "text": "Cats are small domesticated animals."},
]


def _pythonpath() -> str:
    """This checkout first, then whatever the test run had (a subprocess imports the same code)."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def _load_by_path() -> Any:
    """What the server does with langgraph.json: import the file by path and take the variable."""
    config = json.loads((REPO / "langgraph.json").read_text())
    path, variable = config["graphs"]["research"].rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("served_graph", REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as the server registers it
    spec.loader.exec_module(module)
    return getattr(module, variable)


def test_langgraph_json_names_a_factory_that_serves_the_loop() -> None:
    from langgraph.store.memory import InMemoryStore
    from langgraph_api._factory_utils import _classify_factory
    from langgraph_sdk.runtime import _ReadRuntime

    factory = _load_by_path()
    hook = _classify_factory(factory)
    assert hook is not None  # the server passes it the config and the ServerRuntime
    runtime = _ReadRuntime(access_context="assistants.read", store=InMemoryStore())

    async def read() -> Any:
        async with factory(**hook({"configurable": {}}, runtime)) as graph:
            return graph

    graph = asyncio.run(read())
    drawn = graph.get_graph()
    assert [n for n in drawn.nodes if not n.startswith("__")] == NODES
    assert graph.get_input_jsonschema()["required"] == ["question"]
    context = set(graph.get_context_jsonschema()["properties"])
    assert context >= {"budget_tokens", "budget_searches", "budget_thinks", "search_cost"}
    config = json.loads((REPO / "langgraph.json").read_text())
    assert config["checkpointer"]["path"].endswith("serve.py:checkpointer")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dev_server(tmp_path: Path, leadline_home: Path) -> Iterator[Any]:
    """`langgraph dev` on loopback with this checkout's langgraph.json; yields a starter(env)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(extra_env: dict[str, str]) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": _pythonpath(),
            "LEADLINE_HOME": str(leadline_home),
            "LANGSMITH_TRACING": "false",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            **extra_env,
        }
        # The in-memory server keeps its own files in ./.langgraph_api: run it in a scratch folder that
        # holds the committed langgraph.json and a link to the package it names, not in the checkout.
        work = tmp_path / "serve"
        work.mkdir(exist_ok=True)
        shutil.copy(REPO / "langgraph.json", work / "langgraph.json")
        if not (work / "leadline").exists():
            (work / "leadline").symlink_to(REPO / "leadline", target_is_directory=True)
        log = (tmp_path / "dev.log").open("wb")
        cmd = [sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload"]
        cmd += ["--allow-blocking", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("langgraph dev did not start:\n" + (tmp_path / "dev.log").read_text()[-3000:])

    yield start
    for proc in procs:
        if proc.poll() is not None:
            continue
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _store() -> Any:
    return make_store(Settings.from_env())


def test_dev_server_streams_the_loop_and_resumes_with_leadline(dev_server: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    with serve_fake_openai(flavor="vllm", replies=REPLIES * 3, model="served-model") as llm:
        url = dev_server({"LEADLINE_BASE_URL": llm.url, "LEADLINE_CORPUS": str(corpus)})

        async def go() -> None:
            client = get_client(url=url)
            budget = {"budget_tokens": 600, "budget_searches": 3}
            # 1. a question streams node by node and ends in the cited answer, recorded as a leadline run
            thread = (await client.threads.create())["thread_id"]
            events = [
                chunk
                async for chunk in client.runs.stream(
                    thread, "research", input={"question": QUESTION}, context=budget, stream_mode="updates"
                )
            ]
            assert not [e for e in events if e.event == "error"], events[-1]
            nodes = [next(iter(e.data)) for e in events if e.event == "updates"]
            assert nodes[:2] == ["plan", "search"] and nodes[-1] == "answer"
            # the steps inside a graph node are all in the run's trace, in order
            steps = [t["node"] for t in (await client.threads.get_state(thread))["values"]["trace"]]
            assert steps[:5] == ["assess", "plan", "decide", "search", "read"] and steps[-1] == "answer"
            final = (await client.threads.get_state(thread))["values"]
            assert final["answer"] == "Balliol College"
            assert final["citations"][0]["doc_id"] == "d2"
            record = _store().get_run(thread)  # the thread id is the run id
            assert record.status == "done" and record.answer == "Balliol College"
            assert record.budget["tokens"] == 600 and record.spend["searches"] <= 3

            # 2. interrupted in Studio before the answer; `leadline resume` finishes it (same checkpoints)
            thread = (await client.threads.create())["thread_id"]
            await client.runs.wait(
                thread, "research", input={"question": QUESTION}, context=budget, interrupt_before=["answer"]
            )
            assert (await client.threads.get_state(thread))["next"] == ["answer"]
            assert _store().get_run(thread).status == "interrupted"
            calls_before = len(llm.generation_requests())
            done = subprocess.run(
                [sys.executable, "-m", "leadline.cli", "resume", thread, "--json", "-q"],
                env={**os.environ, "PYTHONPATH": _pythonpath()},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["answer"] == "Balliol College"
            assert len(llm.generation_requests()) == calls_before + 1  # only the answer was generated
            state = await client.threads.get_state(thread)  # Studio sees the run leadline finished
            assert state["values"]["answer"] == "Balliol College" and state["next"] == []

            # 3. interrupted, then resumed from Studio
            thread = (await client.threads.create())["thread_id"]
            await client.runs.wait(
                thread, "research", input={"question": QUESTION}, context=budget, interrupt_before=["answer"]
            )
            out = await client.runs.wait(thread, "research", input=None)
            assert isinstance(out, dict) and out["answer"] == "Balliol College"
            assert _store().get_run(thread).status == "done"

            # 4. bad requests: one clear error each, and no run recorded
            runs_before = len(_store().list_runs())
            for payload, context, needle in (
                ({}, None, "InvalidQuestionError"),
                ({"question": "   "}, None, "the question is empty"),
                ({"question": QUESTION}, {"budget_tokens": -3}, "tokens must be positive"),
                ({"question": QUESTION}, {"budget_token": 3}, "unknown run context field"),
            ):
                thread = (await client.threads.create())["thread_id"]
                with pytest.raises(Exception) as caught:
                    await client.runs.wait(
                        thread, "research", input=payload, context=context, raise_error=True
                    )
                assert needle in str(caught.value)
            assert len(_store().list_runs()) == runs_before

        asyncio.run(go())


@pytest.mark.slow
def test_dev_server_answers_on_the_embedded_default(dev_server: Any) -> None:
    url = dev_server({})

    async def go() -> None:
        client = get_client(url=url)
        thread = (await client.threads.create())["thread_id"]
        nodes = [
            next(iter(chunk.data))
            async for chunk in client.runs.stream(
                thread,
                "research",
                input={"question": "Alvaro Mexia had a diplomatic mission with which tribe?"},
                context={"budget_tokens": 256, "budget_searches": 2},
                stream_mode="updates",
            )
            if chunk.event == "updates"
        ]
        assert nodes[:2] == ["plan", "search"] and nodes[-1] == "answer"
        values = (await client.threads.get_state(thread))["values"]
        assert values["answer"].strip() and values["citations"]
        record = _store().get_run(thread)
        assert record.status == "done" and record.answer == values["answer"]
        assert record.spend["tokens"] <= 256 and record.spend["searches"] <= 2

    asyncio.run(go())
