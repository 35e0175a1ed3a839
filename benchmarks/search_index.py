"""Local corpus index benchmark: search latency, indexing rate, memory and disk at 17.5k and 1M passages.

Issue 4's target: search p95 under 50 ms at one million passages. Two corpora:

- the packaged demo corpus (17,530 Wikipedia passages), queried with the 406 dev questions of
  ``../shared/datasets/multihop/questions.dev.jsonl`` (also gives recall@5 of the gold passages);
- ``n_synthetic`` passages (default 1,000,000) of ~60 words drawn deterministically from the demo corpus
  vocabulary with Zipf-Mandelbrot weights (1 / (rank + 2.7)), written once to a JSONL file under
  ``benchmarks/out/`` and indexed from there, so the indexing rate is that of ``leadline index FILE``.

Each measurement runs in a fresh worker process so memory figures are not polluted by earlier phases:
``index_rss_mb_*`` is the resident-memory growth from opening the index and running every query;
``index_build_peak_rss_mb_*`` is the peak growth while building. ``title_table_*`` is the first link
following's one pass over the stored titles (time, memory); ``links_p50_ms``/``links_p95_ms`` what
following a search's links (2 passages) adds to it. ``--compare-engines`` re-runs the
bm25s-vs-tantivy measurement behind the choice of engine (docs/corpus-index.md).

Usage: python benchmarks/search_index.py [--n-synthetic N] [--compare-engines [--compare-n N]]
The last line printed is ``key=value`` figures. Timings depend on the machine and on its other load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared_datasets import DATASETS

ROOT = Path(__file__).resolve().parent.parent
DEV_QUESTIONS = DATASETS / "multihop" / "questions.dev.jsonl"
OUT = ROOT / "benchmarks" / "out"
WORDS_PER_PASSAGE = 60
TITLE_WORDS = 3
ZIPF_SHIFT = 2.7
SEED = 20240601
TARGET_P95_MS = 50.0

if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


# -- measurements inside a worker process ------------------------------------------------------------------


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory from /proc (Linux): VmRSS in all, RssAnon the private heap, RssFile mapped files."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _dev_questions() -> list[dict[str, Any]]:
    with DEV_QUESTIONS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _worker_build(source: str, directory: Path) -> dict[str, float]:
    from leadline.tools.corpus_index import build_named_index

    before = _rss_mb()
    started = time.perf_counter()
    index = build_named_index(source, directory.parent, name=directory.name)
    seconds = time.perf_counter() - started
    return {
        "passages": float(len(index)),
        "index_s": seconds,
        "index_rate_per_s": len(index) / seconds,
        "index_build_peak_rss_mb": _peak_rss_mb() - before,
        "disk_mb": _disk_mb(directory),
    }


def _worker_search(directory: Path, k: int = 5) -> dict[str, float]:
    from leadline.tools.corpus_index import CorpusIndex

    questions = _dev_questions()
    before, before_anon = _rss_mb(), _rss_mb("RssAnon")
    started = time.perf_counter()
    index = CorpusIndex.open(directory)  # full checksum verification, as every open does by default
    open_s = time.perf_counter() - started
    for question in questions:  # warm-up pass: page cache and first-touch of the memory map
        index.search(question["question"], k=k)
    latencies, cpu_times, recalls = [], [], []
    for question in questions:
        started, cpu_started = time.perf_counter(), time.thread_time()
        results = index.search(question["question"], k=k)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        gold = set(question["supporting_doc_ids"])
        recalls.append(len(gold & {r.doc_id for r in results}) / len(gold))
    index_rss_mb, index_rss_anon_mb = _rss_mb() - before, _rss_mb("RssAnon") - before_anon
    rss_before_links = _rss_mb()
    started = time.perf_counter()
    index.linked(questions[0]["question"], index.search(questions[0]["question"], k=k), n=2)
    title_table_s = time.perf_counter() - started  # the first call builds the title table
    title_table_mb = _rss_mb() - rss_before_links
    link_latencies, linked_counts = [], []
    for question in questions:  # what following a search's links adds to it (``search(..., links=2)``)
        results = index.search(question["question"], k=k)
        started = time.perf_counter()
        linked = index.linked(question["question"], results, n=2)
        link_latencies.append((time.perf_counter() - started) * 1000)
        linked_counts.append(len(linked))
    return {
        "open_s": open_s,
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": _percentile(latencies, 0.95),
        "search_p99_ms": _percentile(latencies, 0.99),
        "search_max_ms": max(latencies),
        # CPU time of the searching thread: what the query costs when the machine is not shared.
        "search_cpu_p50_ms": statistics.median(cpu_times),
        "search_cpu_p95_ms": _percentile(cpu_times, 0.95),
        "recall_at_5": statistics.fmean(recalls),
        "title_table_s": title_table_s,
        "title_table_rss_mb": title_table_mb,
        "links_p50_ms": statistics.median(link_latencies),
        "links_p95_ms": _percentile(link_latencies, 0.95),
        "linked_per_search": statistics.fmean(linked_counts),
        "index_rss_mb": index_rss_mb,
        # The part of it that is heap; the rest is the memory-mapped index, which the kernel can evict.
        "index_rss_anon_mb": index_rss_anon_mb,
    }


def _worker_bm25s(source: str, directory: Path, k: int = 5) -> dict[str, float]:
    """The rejected alternative, measured the same way: bm25s + PyStemmer stemming + English stopwords."""
    import bm25s  # type: ignore[import-untyped]
    import Stemmer  # type: ignore[import-not-found]

    from leadline.tools.demo import demo_corpus_path
    from leadline.tools.passages import load_passages

    path = demo_corpus_path() if source == "demo" else Path(source)
    stemmer = Stemmer.Stemmer("english")
    before = _rss_mb()
    started = time.perf_counter()
    ids, texts = [], []
    for passage in load_passages(path):
        ids.append(passage.id)
        texts.append(f"{passage.title}\n{passage.text}")
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    del texts
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    del tokens
    retriever.save(directory, show_progress=False)
    seconds = time.perf_counter() - started
    build_peak = _peak_rss_mb() - before
    del retriever
    retriever = bm25s.BM25.load(directory, mmap=True)
    questions = _dev_questions()

    def search(text: str) -> list[str]:
        query = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
        documents, _ = retriever.retrieve(query, k=k, show_progress=False)
        return [ids[i] for i in documents[0]]

    for question in questions:
        search(question["question"])
    latencies, recalls = [], []
    for question in questions:
        started = time.perf_counter()
        found = search(question["question"])
        latencies.append((time.perf_counter() - started) * 1000)
        gold = set(question["supporting_doc_ids"])
        recalls.append(len(gold & set(found)) / len(gold))
    return {
        "passages": float(len(ids)),
        "index_s": seconds,
        "index_rate_per_s": len(ids) / seconds,
        "index_build_peak_rss_mb": build_peak,
        "disk_mb": _disk_mb(directory),
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": _percentile(latencies, 0.95),
        "recall_at_5": statistics.fmean(recalls),
    }


# -- synthetic corpus -------------------------------------------------------------------------------------


def synthetic_corpus(n: int, out_dir: Path = OUT) -> Path:
    """A JSONL file of ``n`` synthetic passages (created once; same bytes for the same ``n``)."""
    path = out_dir / f"synthetic-{n}-seed{SEED}.jsonl"
    if path.is_file():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    # A private partial file, renamed when complete: two benchmark runs may generate at the same time.
    handle_fd, partial_name = tempfile.mkstemp(prefix=path.name, suffix=".partial", dir=out_dir)
    partial = Path(partial_name)
    try:
        with os.fdopen(handle_fd, "w", encoding="utf-8") as handle:
            for row in _synthetic_rows(n):
                handle.write(json.dumps(row) + "\n")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _synthetic_rows(n: int, chunk: int = 20_000) -> Iterator[dict[str, str]]:
    import numpy as np

    from leadline.tools.demo import demo_corpus_path
    from leadline.tools.passages import load_passages

    counts: Counter[str] = Counter()
    for passage in load_passages(demo_corpus_path()):
        counts.update(re.findall(r"\w+", passage.text))
    vocabulary = np.array(sorted(counts, key=lambda word: (-counts[word], word)), dtype=object)
    weights = 1.0 / (np.arange(1, len(vocabulary) + 1) + ZIPF_SHIFT)
    weights /= weights.sum()
    rng = np.random.default_rng(SEED)
    width = TITLE_WORDS + WORDS_PER_PASSAGE
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        words = vocabulary[rng.choice(len(vocabulary), size=(size, width), p=weights)]
        for offset, row in enumerate(words):
            yield {
                "id": f"syn-{start + offset:07d}",
                "title": " ".join(row[:TITLE_WORDS]).title(),
                "text": " ".join(row[TITLE_WORDS:]),
            }


# -- orchestration ----------------------------------------------------------------------------------------


def _in_worker(*args: str) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{done.stderr[-4000:]}")
    return {key: float(value) for key, value in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def _measure(label: str, source: str, scratch: Path) -> dict[str, float]:
    directory = scratch / label
    figures = _in_worker("build", source, str(directory))
    figures.update(_in_worker("search", str(directory)))
    return figures


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (``timeout``, a CI cancel) into SystemExit, so half a gigabyte of scratch index is
    deleted and the worker killed instead of both being left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(n_synthetic: int = 1_000_000) -> dict[str, float]:
    """Measure at 17.5k (demo) and ``n_synthetic`` passages; keys end in ``_17k`` and ``_1m``.

    The ``_1m`` keys keep their names for smaller ``n_synthetic`` (quick runs); ``n_synthetic`` says
    what was measured.
    """
    if not DEV_QUESTIONS.is_file():
        raise SystemExit(f"needs the dev questions at {DEV_QUESTIONS}")
    started = time.perf_counter()
    synthetic = synthetic_corpus(n_synthetic)
    generate_s = time.perf_counter() - started
    figures: dict[str, float] = {"n_synthetic": float(n_synthetic), "synthetic_generate_s": generate_s}
    with _exit_on_sigterm(), tempfile.TemporaryDirectory(prefix="leadline-search-index-bench-") as scratch:
        for suffix, source in (("17k", "demo"), ("1m", str(synthetic))):
            measured = _measure(f"corpus-{suffix}", source, Path(scratch))
            figures.update({_suffixed(key, suffix): value for key, value in measured.items()})
    figures["meets_p95_target_1m"] = float(figures["search_p95_ms_1m"] < TARGET_P95_MS)
    return figures


def _suffixed(key: str, suffix: str) -> str:
    # Rates read "index_rate_1m_per_s": the unit stays last.
    if key.endswith("_per_s"):
        return f"{key.removesuffix('_per_s')}_{suffix}_per_s"
    return f"{key}_{suffix}"


def compare_engines(n_synthetic: int = 200_000) -> dict[str, dict[str, float]]:
    """tantivy (CorpusIndex) and bm25s side by side, on the demo corpus and ``n_synthetic`` passages."""
    synthetic = synthetic_corpus(n_synthetic)
    table: dict[str, dict[str, float]] = {}
    with _exit_on_sigterm(), tempfile.TemporaryDirectory(prefix="leadline-search-engines-") as scratch:
        for label, source in (("17k", "demo"), (f"{n_synthetic // 1000}k", str(synthetic))):
            table[f"tantivy_{label}"] = _measure(f"tantivy-{label}", source, Path(scratch))
            table[f"bm25s_{label}"] = _in_worker("bm25s", source, str(Path(scratch) / f"bm25s-{label}"))
    return table


def _print_table(columns: dict[str, dict[str, float]]) -> None:
    """Metrics as rows, corpora (or engines) as columns."""
    metrics = sorted({key for column in columns.values() for key in column})
    width = max(len(name) for name in columns) + 2
    print(f"{'metric':<26}" + "".join(f"{name:>{width}}" for name in columns))
    for metric in metrics:
        cells = "".join(f"{columns[name].get(metric, float('nan')):>{width}.4g}" for name in columns)
        print(f"{metric:<26}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description="local corpus index benchmark")
    parser.add_argument("--n-synthetic", type=int, default=1_000_000)
    parser.add_argument("--compare-engines", action="store_true", help="bm25s vs tantivy instead")
    parser.add_argument("--compare-n", type=int, default=200_000)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        phase, *rest = args.worker
        if phase == "build":
            result = _worker_build(rest[0], Path(rest[1]))
        elif phase == "search":
            result = _worker_search(Path(rest[0]))
        else:
            result = _worker_bm25s(rest[0], Path(rest[1]))
        print(json.dumps(result))
        return

    print(
        f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f} "
        "(wall-clock timings include whatever else the machine is running)"
    )
    if args.compare_engines:
        table = compare_engines(args.compare_n)
        _print_table(table)
        flat = {f"{engine}_{key}": value for engine, row in table.items() for key, value in row.items()}
        print(" ".join(f"{key}={value:.4g}" for key, value in sorted(flat.items())))
        return
    figures = run(args.n_synthetic)
    columns: dict[str, dict[str, float]] = {"demo 17.5k": {}, f"synthetic {args.n_synthetic}": {}}
    for key, value in figures.items():
        for suffix, column in zip(("17k", "1m"), columns.values(), strict=True):
            if f"_{suffix}" in key:
                column[key.replace(f"_{suffix}", "")] = value
    _print_table(columns)
    print(" ".join(f"{key}={value:.4g}" for key, value in sorted(figures.items())))


if __name__ == "__main__":
    main()
