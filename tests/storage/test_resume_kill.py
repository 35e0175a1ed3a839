"""SIGKILL a research run at random points, resume it, and get the uninterrupted run's result and ledger.

Each research run happens in a forked child process (forked, so that the many restarts cost no Python
start-up), with scripted fakes (deterministic, like a seeded model) on one SQLite file. The child is
killed either right after its N-th recorded side effect (N random: the crash lands between a recorded
call and the next checkpoint) or after a random delay (anywhere at all). It is then continued with
``Researcher.resume(run_id)``, the call behind ``leadline resume RUN_ID``, and may be killed again.

What is checked, against one uninterrupted run of the same question:

* same answer and citations;
* the ledger in the database and the spend the resumed run reports equal the uninterrupted run's
  (tokens, searches, fetches, LLM calls; not wall time), and the same steps are recorded;
* no search or LLM call that had been recorded is ever made again. The fakes and the store append to
  one log (``call X`` when a fake is called, ``recorded X`` once the store committed it); a ``call X``
  after ``recorded X`` is a repeated spend. A call whose process died before its record committed had
  no result anyone could keep and is made again on resume; that can only happen to timed kills, and
  is counted, never allowed for kills placed after a record.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from leadline import Budget, Researcher, Settings
from leadline.llm.base import GenerationParams, Message
from leadline.storage.base import StepRecord
from leadline.storage.store import SqlRunStore
from leadline.testing import FakeSearch, ScriptedLLM
from leadline.tools.base import Document, SearchResult

QUESTION = "Which college did the author of The Selfish Gene attend?"
BUDGET = Budget(tokens=600, searches=3)
TIME_LIMIT_S = 45.0
MAX_RUNS = 40

DOCS = [
    Document(
        doc_id="d1", title="The Selfish Gene", text="The Selfish Gene is a 1976 book by Richard Dawkins."
    ),
    Document(
        doc_id="d2", title="Richard Dawkins", text="Richard Dawkins studied at Balliol College, Oxford."
    ),
    Document(doc_id="d3", title="Cats", text="Cats are small domesticated animals."),
]

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="needs fork() to restart runs quickly",
)


def _call_id(kind: str, payload: Any) -> str:
    return kind + ":" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _log(path: str, line: str) -> None:
    # One write() per line on an O_APPEND file: lines from successive processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _responder(log_path: str) -> Any:
    def respond(messages: Sequence[Message], params: GenerationParams) -> str:
        _log(log_path, "call " + _call_id("llm", [m.to_dict() for m in messages]))
        prompt = messages[-1].content
        if '"queries"' in prompt:
            return json.dumps({"queries": ["Selfish Gene author"]})
        if '"next_query"' in prompt:
            return json.dumps(
                {"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Richard Dawkins college"}
            )
        if '"answer"' in prompt:
            return json.dumps({"answer": "Balliol College", "sources": [2]})
        return "## Summary\n\nDawkins studied at Balliol College [2]."

    return respond


class LoggingSearch(FakeSearch):
    log_path: str = ""

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        _log(self.log_path, "call " + _call_id("search", query))
        return await super().search(query, k=k)


class KillingStore(SqlRunStore):
    """The real store, logging each committed side effect and SIGKILLing itself after the N-th."""

    log_path: str = ""
    kill_after: int | None = None
    recorded: int = 0

    def record_step(self, step: StepRecord) -> StepRecord:
        stored = super().record_step(step)
        if step.kind == "llm":
            _log(self.log_path, "recorded " + _call_id("llm", step.request["messages"]))
        elif step.kind == "search":
            _log(self.log_path, "recorded " + _call_id("search", step.request["query"]))
        self.recorded += 1
        if self.kill_after is not None and self.recorded >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored


def _child(
    url: str, home: str, run_id: str, resume: bool, log_path: str, kill_after: int | None, out: str
) -> None:
    """Body of a forked child: one research run (or resume); never returns into pytest."""
    code = 1
    try:
        store = KillingStore.from_url(url)
        store.log_path, store.kill_after = log_path, kill_after
        search = LoggingSearch(list(DOCS))
        search.log_path = log_path
        settings = Settings(home=Path(home), db_url=url)
        researcher = Researcher(settings, llm=ScriptedLLM(_responder(log_path)), search=search, store=store)
        if resume:
            result = researcher.resume(run_id)
        else:
            result = researcher.research(QUESTION, budget=BUDGET, run_id=run_id)
        spend = result.spend
        summary = {
            "answer": result.answer,
            "citations": [c.doc_id for c in result.citations],
            "spend": [
                spend.prompt_tokens,
                spend.completion_tokens,
                spend.searches,
                spend.fetches,
                spend.llm_calls,
            ],
        }
        Path(out).write_text(json.dumps(summary))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _ledger(url: str, run_id: str) -> tuple[list[int], list[str]]:
    with SqlRunStore.from_url(url) as store:
        t = store.ledger_totals(run_id)
        keys = [s.key for s in store.list_steps(run_id)]
    return [t.prompt_tokens, t.completion_tokens, t.searches, t.fetches, t.llm_calls], keys


def _started(url: str, run_id: str) -> bool:
    """Whether the run exists (a kill before its first commit leaves nothing to resume)."""
    if not Path(url.removeprefix("sqlite:///")).exists():
        return False
    with SqlRunStore.from_url(url) as store:
        return any(r.run_id == run_id for r in store.list_runs(limit=10))


def _repeats(log_path: Path) -> tuple[list[str], int]:
    """(calls made again after being recorded, calls made again because they were lost in flight)."""
    recorded: set[str] = set()
    called: set[str] = set()
    repeated_recorded: list[str] = []
    lost_in_flight = 0
    for line in log_path.read_text().splitlines():
        what, call = line.split(" ", 1)
        if what == "recorded":
            recorded.add(call)
        elif call in recorded:
            repeated_recorded.append(call)
        else:
            lost_in_flight += call in called
            called.add(call)
    return repeated_recorded, lost_in_flight


def _spawn(ctx: Any, *args: Any) -> Any:
    proc = ctx.Process(target=_child, args=args)
    proc.start()
    return proc


def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(int(os.environ.get("LEADLINE_KILL_SEED", "20261129")))
    home = str(tmp_path / "home")

    # The uninterrupted reference run.
    ref_url, ref_log, ref_out = (
        f"sqlite:///{tmp_path / 'ref.db'}",
        str(tmp_path / "ref.log"),
        str(tmp_path / "ref.json"),
    )
    started = time.monotonic()
    proc = _spawn(ctx, ref_url, home, "reference", False, ref_log, None, ref_out)
    proc.join(60)
    ref_seconds = time.monotonic() - started
    assert proc.exitcode == 0
    reference = json.loads(Path(ref_out).read_text())
    ref_ledger, ref_keys = _ledger(ref_url, "reference")
    ref_steps = len(ref_keys)
    assert reference["answer"] == "Balliol College" and ref_steps >= 5
    assert reference["spend"] == ref_ledger

    deadline = time.monotonic() + TIME_LIMIT_S
    kills = {"after_record": 0, "timed": 0}
    lost_in_flight = 0
    runs = 0
    while time.monotonic() < deadline and runs < MAX_RUNS:
        runs += 1
        url, log, out = (
            f"sqlite:///{tmp_path / f'run{runs}.db'}",
            tmp_path / f"run{runs}.log",
            str(tmp_path / f"{runs}.json"),
        )
        timed_run = rng.random() < 0.4
        for attempt in range(6):
            last = attempt == 5
            kill_after = None if last or timed_run else rng.randint(1, ref_steps)
            resume = _started(url, "killed-run")
            proc = _spawn(ctx, url, home, "killed-run", resume, str(log), kill_after, out)
            if timed_run and not last:
                proc.join(rng.uniform(0.0, ref_seconds))
                if proc.exitcode is None:
                    os.kill(proc.pid, signal.SIGKILL)
            proc.join(60)
            if proc.exitcode == 0:
                break
            assert proc.exitcode == -signal.SIGKILL, (
                f"run {runs} attempt {attempt} crashed (exit {proc.exitcode})"
            )
            kills["timed" if timed_run else "after_record"] += 1
        assert proc.exitcode == 0
        result = json.loads(Path(out).read_text())
        assert result["answer"] == reference["answer"]
        assert result["citations"] == reference["citations"]
        assert result["spend"] == reference["spend"], f"run {runs}: resumed spend differs"
        ledger, keys = _ledger(url, "killed-run")
        assert ledger == ref_ledger, f"run {runs}: ledger {ledger} != uninterrupted {ref_ledger}"
        assert keys == ref_keys
        repeated, lost = _repeats(log)
        assert repeated == [], f"run {runs}: recorded calls were made again: {repeated}"
        if not timed_run:
            assert lost == 0, f"run {runs}: a call was repeated although every kill came after a record"
        lost_in_flight += lost

    assert kills["after_record"] >= 5, kills
    print(
        f"\n{runs} runs, kills {kills}, calls lost in flight to timed kills and made again: {lost_in_flight}"
    )
