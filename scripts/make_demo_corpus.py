"""Regenerate leadline/tools/data/demo_corpus.jsonl.gz from the shared datasets, byte for byte.

The demo corpus ships inside the package so that ``leadline ask`` works offline on a fresh install. It is
the union of ``multihop/corpus.jsonl`` and ``distractors/corpus.jsonl`` (17.5k Wikipedia passages) with
only ``id``, ``title`` and ``text`` kept. The gzip header carries no file name and mtime 0, so running
this twice gives the same bytes (and the same sha256).

Usage: python scripts/make_demo_corpus.py [--datasets ../shared/datasets] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("multihop/corpus.jsonl", "distractors/corpus.jsonl")


def write_demo_corpus(datasets: Path, out: Path) -> tuple[int, str]:
    """Write the corpus; return (passage count, sha256 of the written file)."""
    seen: set[str] = set()
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        for source in SOURCES:
            with (datasets / source).open(encoding="utf-8") as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    if row["id"] in seen:
                        raise SystemExit(f"duplicate passage id {row['id']!r} in {source}")
                    seen.add(row["id"])
                    kept = {"id": row["id"], "title": row.get("title") or "", "text": row["text"]}
                    gz.write((json.dumps(kept, ensure_ascii=False) + "\n").encode("utf-8"))
                    count += 1
    return count, hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "leadline" / "tools" / "data" / "demo_corpus.jsonl.gz"
    )
    args = parser.parse_args()
    count, digest = write_demo_corpus(args.datasets, args.out)
    print(f"wrote {count} passages to {args.out} ({args.out.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
