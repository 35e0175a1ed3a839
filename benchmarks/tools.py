"""Benchmark of the web tools: fetch + extraction throughput, extraction time, and corpus search.

Serves the PostgreSQL 15 manual (../shared/datasets/web/postgresql-15-html.tar.gz) from the loopback site
server in a child process and reads the same pages with the real :class:`~leadline.tools.fetcher.Fetcher`
(SSRF guard, robots.txt, caps, trafilatura) at 1, 8 and 32 concurrent reads, side by side in one run:

* with a simulated server latency (``--latency-ms``, default 100 ms per response: a remote web server's
  round trip and think time, which is what concurrency overlaps on the real web), and
* with no added latency (pure loopback: extraction is CPU work, so on a machine with few free cores the
  speedup there is bounded by the cores, not by the fetcher).

Then the extraction time per page alone (median, p95), and the local corpus search figures from
``benchmarks/search_index.py`` (latency at 17.5k and 1M passages, indexing rate, index memory).

Timings are noisy when other processes share the CPU; compare ratios measured in the same run. Ends with
one line of ``key=value`` figures.

    python benchmarks/tools.py [--pages 96] [--latency-ms 100] [--n-synthetic 1000000] [--skip-search]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leadline.tools.base import SearchResult  # noqa: E402
from leadline.tools.extraction import extract_html  # noqa: E402
from leadline.tools.fetcher import Fetcher, FetchPolicy  # noqa: E402
from leadline.tools.site_server import load_site  # noqa: E402

TARBALL = ROOT.parent / "shared" / "datasets" / "web" / "postgresql-15-html.tar.gz"


def start_site(source: Path, latency_s: float) -> tuple[subprocess.Popen[str], str]:
    """The site server in its own process, so serving does not compete with the fetcher for the GIL."""
    code = (
        "import sys; from pathlib import Path; from leadline.tools.site_server import run_site; "
        f"run_site(Path({str(source)!r}), port=0, latency_s={latency_s!r}, "
        "echo=lambda line: print(line, flush=True))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if " at http://" not in line:
        process.kill()
        raise RuntimeError(f"site server did not start: {line!r}")
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    return process, url


async def read_all(base_url: str, paths: list[str], concurrency: int) -> tuple[float, int, int]:
    """Read every path with at most ``concurrency`` reads in flight; return (seconds, ok, failed)."""
    policy = FetchPolicy(
        allow=("127.0.0.1",),
        per_host_concurrency=concurrency,
        max_connections=max(concurrency, 8),
        deadline_s=60.0,
    )
    gate = asyncio.Semaphore(concurrency)
    ok = failed = 0
    async with Fetcher(policy) as fetcher:
        await fetcher.fetch(f"{base_url}/index.html")  # robots.txt and a connection, outside the clock

        async def one(path: str) -> None:
            nonlocal ok, failed
            url = f"{base_url}/{path}"
            async with gate:
                try:
                    document = await fetcher.read(SearchResult(doc_id=url, title="", snippet="", url=url))
                    ok += bool(document.text)
                except Exception as exc:  # a benchmark counts failures, it does not stop on them
                    failed += 1
                    print(f"  failed {path}: {exc}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(one(path) for path in paths))
        return time.perf_counter() - started, ok, failed


def throughput(source: Path, paths: list[str], latency_s: float, levels: list[int]) -> dict[int, float]:
    process, url = start_site(source, latency_s)
    try:
        rates: dict[int, float] = {}
        for level in levels:
            seconds, ok, failed = asyncio.run(read_all(url, paths, level))
            rates[level] = ok / seconds
            print(
                f"  latency {latency_s * 1000:>4.0f} ms  concurrency {level:>2}: {ok} pages in "
                f"{seconds:6.2f} s = {rates[level]:6.1f} pages/s ({failed} failed)"
            )
        return rates
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def extraction_times(files: dict[str, bytes], paths: list[str]) -> list[float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        extract_html(files[path], url=f"http://127.0.0.1/{path}")
        times.append((time.perf_counter() - started) * 1000)
    return times


def search_figures(n_synthetic: int) -> dict[str, Any]:
    for name in ("benchmarks.search_index", "search_index"):
        try:
            module = importlib.import_module(name)
            break
        except ImportError:
            continue
    else:
        print("  benchmarks/search_index.py is not there yet: corpus search figures skipped")
        return {}
    figures: dict[str, Any] = module.run(n_synthetic=n_synthetic)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=TARBALL)
    parser.add_argument("--pages", type=int, default=96)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--extract-pages", type=int, default=200)
    parser.add_argument("--n-synthetic", type=int, default=1_000_000)
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()

    files = load_site(args.source)
    html = sorted(name for name in files if name.endswith(".html"))
    step = max(1, len(html) // args.pages)
    paths = html[::step][: args.pages]
    levels = [1, 8, 32]
    print(
        f"fetch + extract {len(paths)} pages of {len(html)} from {args.source.name} (cpus: {os.cpu_count()})"
    )

    figures: dict[str, Any] = {}
    with_latency = throughput(args.source, paths, args.latency_ms / 1000, levels)
    no_latency = throughput(args.source, paths, 0.0, levels)
    for level in levels:
        figures[f"fetch_pages_per_s_{level}"] = round(with_latency[level], 1)
    figures["fetch_speedup_8"] = round(with_latency[8] / with_latency[1], 2)
    figures["fetch_speedup_32"] = round(with_latency[32] / with_latency[1], 2)
    figures["fetch_speedup_32_nolatency"] = round(no_latency[32] / no_latency[1], 2)
    figures["fetch_pages_per_s_32_nolatency"] = round(no_latency[32], 1)
    figures["latency_ms"] = args.latency_ms

    extract_paths = html[:: max(1, len(html) // args.extract_pages)][: args.extract_pages]
    times = extraction_times(files, extract_paths)
    figures["extract_ms_p50"] = round(statistics.median(times), 1)
    figures["extract_ms_p95"] = round(percentile(times, 0.95), 1)
    p50, p95 = figures["extract_ms_p50"], figures["extract_ms_p95"]
    print(f"extraction over {len(times)} pages: median {p50} ms, p95 {p95} ms")

    if not args.skip_search:
        print(f"corpus search (benchmarks/search_index.py, {args.n_synthetic:,} synthetic passages)")
        for key, value in search_figures(args.n_synthetic).items():
            figures[key] = round(value, 2) if isinstance(value, float) else value

    print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
