"""What the benchmarks that run the product on traced questions share (`one_step.py`, `default_ask.py`,
`search_arms.py`).

Each records one row per question in a JSONL file beside the traces it compares against, then reads the
rows back and compares them with the traces' figures on the same questions.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from leadline.config import DEFAULT_MODEL


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The recorded rows (none when the file does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mean_se(xs: list[float]) -> tuple[float, float]:
    """The mean and its standard error."""
    return statistics.fmean(xs), (statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0)


def arguments(
    doc: str | None, limit_help: str = "record: the first N traced questions of the split"
) -> argparse.ArgumentParser:
    """The options every such script takes: record or compare, the model, the split, how many, the home."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("command", nargs="?", choices=("record", "compare"), default="compare")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--split", default="dev", choices=("train", "dev"))
    p.add_argument("--limit", type=int, default=60, help=limit_help)
    p.add_argument("--home", default=None, help="record: LEADLINE_HOME (models, the demo index)")
    return p
