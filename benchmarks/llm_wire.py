"""Client CPU per LLM call: httpx's ``AsyncClient`` against the client's aiohttp wire.

The fake OpenAI-compatible server of ``benchmarks/batch.py`` in its own process answers
``/v1/chat/completions`` after 300 ms; this process makes the calls, 1 and 32 at a time, first with
``httpx.AsyncClient()`` as it comes (what the client uses where a proxy is set in the environment), then
with :class:`leadline.llm.aiohttp_wire.AiohttpWire` (the client's default), each call reading the JSON
answer, and measures its own CPU per call (``time.process_time``), side by side in one run::

    .venv/bin/python benchmarks/llm_wire.py [--calls 640]

Last line: ``cpu_ms_per_call_httpx_32= cpu_ms_per_call_aiohttp_32= aiohttp_over_httpx_32=``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from batch import REPO, SERVER  # noqa: E402  (the same fake server)

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi " * 400}], "max_tokens": 64}


async def cpu_per_call(url: str, wire: str, at_once: int, calls: int) -> float:
    from leadline.llm.aiohttp_wire import AiohttpWire

    client = httpx.AsyncClient() if wire == "httpx" else AiohttpWire(timeout_s=60, connect_s=10)
    try:
        await client.request("POST", url, json=BODY)  # a connection and the client's set-up, not measured
        gate = asyncio.Semaphore(at_once)

        async def one() -> None:
            async with gate:
                (await client.request("POST", url, json=BODY)).json()

        cpu = time.process_time()
        await asyncio.gather(*(one() for _ in range(calls)))
        return (time.process_time() - cpu) * 1000 / calls
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=640, help="calls per measurement at 32 at once")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, "0.3"],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip() + "/v1/chat/completions"
    try:
        figures = {}
        for name in ("httpx", "aiohttp"):
            for at_once, calls in ((1, 20), (32, args.calls)):
                ms = asyncio.run(cpu_per_call(url, name, at_once, calls))
                figures[(name, at_once)] = ms
                print(f"{name:>7}, {at_once:>2} at once: {ms:.2f} ms of client CPU a call", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    plain, wire = figures[("httpx", 32)], figures[("aiohttp", 32)]
    print(
        f"cpu_ms_per_call_httpx_32={plain:.2f} cpu_ms_per_call_aiohttp_32={wire:.2f} "
        f"aiohttp_over_httpx_32={wire / plain:.2f}"
    )


if __name__ == "__main__":
    main()
