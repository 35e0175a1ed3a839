"""Use leadline as an MCP tool server from Python, the way an assistant would (the official `mcp` SDK).

    python examples/mcp_client.py "Alvaro Mexia had a diplomatic mission with which tribe?"

Starts `leadline mcp` over stdio, lists its tools, calls `research` with a budget while printing the
progress notifications, then fetches the run back with `runs`. Needs the mcp extra
(pip install 'leadline[mcp]'); uses the embedded model and the demo corpus unless LEADLINE_* say otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp import Client, StdioServerParameters


async def main(question: str, tokens: int, searches: int) -> None:
    # the SDK starts a server with a minimal environment; pass ours so LEADLINE_* settings reach it
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "leadline.cli", "mcp"], env=dict(os.environ)
    )

    async def on_progress(step: float, total: float | None, message: str | None) -> None:
        print(f"  progress {step:.0f}: {message}", file=sys.stderr)

    # "legacy" connects with the initialize handshake, which waits as long as any request; the default
    # probe gives a server 10 s to answer, less than a loaded machine may need to start leadline.
    async with Client(server, mode="legacy", read_timeout_seconds=900) as client:
        tools = (await client.list_tools()).tools
        print("tools:", ", ".join(t.name for t in tools))
        result = await client.call_tool(
            "research",
            {"question": question, "budget": {"tokens": tokens, "searches": searches}},
            progress_callback=on_progress,
        )
        if result.is_error or result.structured_content is None:
            sys.exit(f"research failed: {result.content}")
        data = result.structured_content
        print(f"Answer: {data['answer']}")
        for c in data["citations"]:
            print(f"  [{c['n']}] {c['title']}")
        found = (await client.call_tool("runs", {"run_id": data["run_id"]})).structured_content or {}
        run, spend = found["run"], found["run"]["spend"]
        print(f"Run {run['run_id']}: {run['status']}, {spend['tokens']} tokens, {spend['searches']} searches")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "question", nargs="?", default="Alvaro Mexia had a diplomatic mission with which tribe?"
    )
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--searches", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.question, args.tokens, args.searches))
