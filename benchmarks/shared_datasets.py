"""Where the benchmarks find ``../shared/datasets`` (the questions, their corpus and the loopback site):
beside the checkout, or wherever ``LEADLINE_DATASETS`` points. One definition, so every script agrees."""

from __future__ import annotations

import os
from pathlib import Path

DATASETS = Path(
    os.environ.get("LEADLINE_DATASETS") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
)
