"""The trace recorder end to end on an embedded model and the demo index (two questions; slow).

It checks the recorder's mechanics (probes, scoring, resuming), not answer quality, so it runs the smaller
packaged model: the default 1.5B takes several minutes for the same two traces on two cores.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from leadline import Budget, Researcher, Settings
from leadline.evals.datasets import QAItem
from leadline.evals.trace_recorder import record_traces
from leadline.evals.traces import read_traces

pytestmark = pytest.mark.slow
MECHANICS_MODEL = "qwen2.5-0.5b-instruct"

ITEMS = [
    QAItem(
        id="mexia",
        question="Alvaro Mexia had a diplomatic mission with which tribe of indigenous people?",
        answers=("Ais",),
    ),
    QAItem(id="mexia-2", question="Who did Alvaro Mexia meet on his diplomatic mission?", answers=("Ais",)),
]


def test_traces_of_the_embedded_model_are_recorded_scored_and_resumable(tmp_path: Path) -> None:
    out = tmp_path / "traces.jsonl"
    budget = Budget(tokens=384, searches=2, search_cost_tokens=500)

    async def go(items: list[QAItem]) -> int:
        async with Researcher(Settings.from_env(model=MECHANICS_MODEL)) as researcher:
            return await record_traces(researcher, items, out, budget=budget, split="train")

    assert asyncio.run(go(ITEMS[:1])) == 1
    assert asyncio.run(go(ITEMS)) == 1  # the first is already there
    traces = read_traces(out)
    assert not traces.skipped and len(traces.traces) == 2
    model = traces.traces[0].model
    assert model and all(t.model == model for t in traces.traces)
    for t in traces.traces:
        assert t.steps and t.steps[0].action == "search"
        assert all(s.probe.f1 is not None for s in t.steps) and t.steps[0].probe.cost > 0
        # a probe costs nothing only where a search left the sources as they were (the probe is reused)
        assert all(s.probe.cost > 0 or s.action == "search" for s in t.steps)
        assert t.closed_book.cost > 0 and t.closed_book.f1 is not None
        assert all(s.signals["evidence"] is not None for s in t.steps)
