"""SIGKILL a research run at random points, resume it, and get the uninterrupted run's result and ledger.

Each research run happens in a child process started from the fork server, which has imported the
package already (``conftest.py``), so the many restarts cost no Python start-up (a plain fork would copy
the site server's threads into the child). The runs use scripted fakes (deterministic, like a seeded
model) on one SQLite file. The child is killed either right after its N-th recorded side effect (N
random: the crash lands between a recorded call and the next checkpoint) or after a random delay
(anywhere at all). It is then continued with ``Researcher.resume(run_id)``, the call behind ``leadline
resume RUN_ID``, and may be killed again.

What is checked, against one uninterrupted run of the same question:

* same answer and citations;
* the ledger in the database and the spend the resumed run reports equal the uninterrupted run's
  (tokens, searches, fetches, LLM calls; not wall time), and the same steps are recorded;
* no search, LLM call or page fetch that had been recorded is ever made again. The fakes, the reader
  and the store append to one log (``call X`` when a fake or the reader is called, ``recorded X`` once
  the store committed it); a ``call X`` after ``recorded X`` is a repeated spend. A call whose process
  died before its record committed had no result anyone could keep and is made again on resume; that
  can only happen to timed kills, and is counted, never allowed for kills placed after a record.

The web variants run the same loop over the local site server (a SearxNG-format search endpoint and
real HTTP page fetches through the SSRF-guarded fetcher), on SQLite and on PostgreSQL. The site server
runs in the parent and logs every page it serves (``http X``): a page served again after its fetch was
recorded is a repeated fetch too, whether or not the reader was called.
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from leadline import Budget, Researcher, Settings
from leadline.llm.base import GenerationParams, Message
from leadline.storage.base import StepRecord
from leadline.storage.store import SqlRunStore
from leadline.testing import FakeSearch, ScriptedLLM
from leadline.tools.base import Document, Reader, SearchBackend, SearchResult
from leadline.tools.site_server import SiteApp, SiteServer, load_site
from leadline.wiring import make_search

QUESTION = "Which college did the author of The Selfish Gene attend?"
BUDGET = Budget(tokens=600, searches=3)
TIME_LIMIT_S = 45.0
MAX_RUNS = 40
WEB_QUESTION = "Which lock does VACUUM FULL take?"
WEB_BUDGET = Budget(tokens=600, searches=2)
WEB_TIME_LIMIT_S = 15.0
WEB_MAX_RUNS = 12
SITE = Path(__file__).resolve().parents[1] / "tools" / "web" / "pages" / "site"

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
    sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="restarts its runs from a fork server",
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


def _web_responder(log_path: str) -> Any:
    def respond(messages: Sequence[Message], params: GenerationParams) -> str:
        _log(log_path, "call " + _call_id("llm", [m.to_dict() for m in messages]))
        prompt = messages[-1].content
        if '"queries"' in prompt:
            return json.dumps({"queries": ["vacuum full lock"]})
        if '"next_query"' in prompt:
            return json.dumps({"known": "VACUUM FULL locks the table", "answer_so_far": "", "next_query": ""})
        return json.dumps({"answer": "ACCESS EXCLUSIVE", "sources": [1]})

    return respond


class LoggingWebSearch:
    """The real SearxNG backend, logging each call."""

    def __init__(self, backend: SearchBackend, log_path: str) -> None:
        self.backend = backend
        self.name = backend.name
        self.log_path = log_path

    async def search(self, query: str, *, k: int = 5) -> list[SearchResult]:
        _log(self.log_path, "call " + _call_id("search", query))
        return await self.backend.search(query, k=k)

    async def aclose(self) -> None:
        await self.backend.aclose()


class LoggingReader:
    """The real fetcher (page store on the run database), logging each fetch it is asked for."""

    def __init__(self, reader: Reader, log_path: str) -> None:
        self.reader = reader
        self.log_path = log_path

    async def read(self, result: SearchResult) -> Document:
        _log(self.log_path, "call " + _call_id("fetch", result.url or result.doc_id))
        return await self.reader.read(result)

    async def aclose(self) -> None:
        await self.reader.aclose()


class LoggingSiteApp(SiteApp):
    """The site server, logging each page it serves to the log of the run that is going on."""

    log_path: str = ""

    async def static(self, request: Any) -> Any:
        if self.log_path:
            _log(self.log_path, "http " + _call_id("fetch", str(request.url)))
        return await super().static(request)


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
        elif step.kind == "fetch":
            _log(self.log_path, "recorded " + _call_id("fetch", step.request["url"]))
        self.recorded += 1
        if self.kill_after is not None and self.recorded >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored


def _child(
    url: str,
    home: str,
    run_id: str,
    resume: bool,
    log_path: str,
    kill_after: int | None,
    out: str,
    site_url: str | None = None,
) -> None:
    """Body of a child process: one research run (or resume); never returns into pytest."""
    code = 1
    try:
        store = KillingStore.from_url(url)
        store.log_path, store.kill_after = log_path, kill_after
        if site_url is None:
            settings = Settings(home=Path(home), db_url=url)
            search = LoggingSearch(list(DOCS))
            search.log_path = log_path
            llm = ScriptedLLM(_responder(log_path))
            researcher = Researcher(settings, llm=llm, search=search, store=store)
            question, budget = QUESTION, BUDGET
        else:
            settings = Settings(home=Path(home), db_url=url, search="searxng", searxng_url=site_url)
            backend, reader = make_search(settings, page_store=store)
            assert reader is not None
            researcher = Researcher(
                settings,
                llm=ScriptedLLM(_web_responder(log_path)),
                search=LoggingWebSearch(backend, log_path),
                reader=LoggingReader(reader, log_path),
                store=store,
            )
            question, budget = WEB_QUESTION, WEB_BUDGET
        if resume:
            result = researcher.resume(run_id)
        else:
            result = researcher.research(question, budget=budget, run_id=run_id)
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
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
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
            repeated_recorded.append(f"{what} {call}")
        elif what == "call":
            lost_in_flight += call in called
            called.add(call)
    return repeated_recorded, lost_in_flight


def _spawn(ctx: Any, *args: Any) -> Any:
    proc = ctx.Process(target=_child, args=args)
    proc.start()
    return proc


def _kill_and_resume(
    tmp_path: Path,
    new_url: Callable[[str], str],
    *,
    time_limit_s: float,
    max_runs: int,
    min_after_record_kills: int,
    site: SiteServer | None = None,
) -> tuple[int, dict[str, int], int, list[str]]:
    """Kill runs at random points and resume them; check each against one uninterrupted run.

    ``new_url(name)`` gives a fresh, empty database for each run. Returns (runs, kills, calls lost in
    flight, the reference run's log lines).
    """
    ctx = multiprocessing.get_context("forkserver")
    rng = random.Random(int(os.environ.get("LEADLINE_KILL_SEED", "20261129")))
    home = str(tmp_path / "home")
    site_url = site.url if site is not None else None

    def log_to(path: Path) -> Path:
        if site is not None:
            assert isinstance(site.app, LoggingSiteApp)
            site.app.log_path = str(path)
        return path

    # The uninterrupted reference run.
    ref_url, ref_log, ref_out = new_url("ref"), log_to(tmp_path / "ref.log"), str(tmp_path / "ref.json")
    started = time.monotonic()
    proc = _spawn(ctx, ref_url, home, "reference", False, str(ref_log), None, ref_out, site_url)
    proc.join(60)
    ref_seconds = time.monotonic() - started
    assert proc.exitcode == 0
    reference = json.loads(Path(ref_out).read_text())
    ref_ledger, ref_keys = _ledger(ref_url, "reference")
    ref_steps = len(ref_keys)
    assert ref_steps >= 5
    assert reference["spend"] == ref_ledger
    ref_lines = ref_log.read_text().splitlines()
    calls = [line for line in ref_lines if line.startswith("call ")]
    assert len(calls) == len(set(calls)), "every call of the reference run is distinct, so repeats show"

    deadline = time.monotonic() + time_limit_s
    kills = {"after_record": 0, "timed": 0}
    lost_in_flight = 0
    runs = 0
    # Past the time limit only until enough kills landed right after a record (a slow, loaded machine).
    while (time.monotonic() < deadline or kills["after_record"] < min_after_record_kills) and runs < max_runs:
        runs += 1
        url, log, out = (
            new_url(f"run{runs}"),
            log_to(tmp_path / f"run{runs}.log"),
            str(tmp_path / f"{runs}.json"),
        )
        timed_run = rng.random() < 0.4
        for attempt in range(6):
            last = attempt == 5
            kill_after = None if last or timed_run else rng.randint(1, ref_steps)
            resume = _started(url, "killed-run")
            proc = _spawn(ctx, url, home, "killed-run", resume, str(log), kill_after, out, site_url)
            if timed_run and not last:
                proc.join(rng.uniform(0.0, ref_seconds))
                # Process.kill, not os.kill: the forkserver may reap a run that ends just now, and
                # Process.kill ignores a pid already gone where os.kill raises.
                proc.kill()
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

    assert kills["after_record"] >= min_after_record_kills, kills
    return runs, kills, lost_in_flight, ref_lines


def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    runs, kills, lost_in_flight, _ = _kill_and_resume(
        tmp_path,
        lambda name: f"sqlite:///{tmp_path / f'{name}.db'}",
        time_limit_s=TIME_LIMIT_S,
        max_runs=MAX_RUNS,
        min_after_record_kills=5,
    )
    print(
        f"\n{runs} runs, kills {kills}, calls lost in flight to timed kills and made again: {lost_in_flight}"
    )


@pytest.fixture(scope="module")
def site() -> Iterator[SiteServer]:
    """The local site server, in this (the parent) process: the runs fetch from it over HTTP."""
    server = SiteServer(LoggingSiteApp(load_site(SITE))).start()
    try:
        yield server
    finally:
        server.stop()


def _web_kill_and_resume(tmp_path: Path, site: SiteServer, new_url: Callable[[str], str]) -> None:
    runs, kills, lost_in_flight, ref_lines = _kill_and_resume(
        tmp_path,
        new_url,
        time_limit_s=WEB_TIME_LIMIT_S,
        max_runs=WEB_MAX_RUNS,
        min_after_record_kills=3,
        site=site,
    )
    fetches = [line for line in ref_lines if line.startswith("recorded fetch:")]
    served = [line for line in ref_lines if line.startswith("http fetch:")]
    assert len(fetches) >= 2, "the web run fetched pages"
    assert len(served) == len(fetches), "each recorded fetch is one page served by the site"
    print(f"\n{runs} web runs, kills {kills}, calls lost in flight and made again: {lost_in_flight}")


def test_sigkill_web_runs_on_sqlite_then_resume(tmp_path: Path, site: SiteServer) -> None:
    _web_kill_and_resume(tmp_path, site, lambda name: f"sqlite:///{tmp_path / f'{name}.db'}")


@pytest.mark.postgres
def test_sigkill_web_runs_on_postgres_then_resume(
    tmp_path: Path, site: SiteServer, pg_urls: Callable[[], str]
) -> None:
    _web_kill_and_resume(tmp_path, site, lambda name: pg_urls())
