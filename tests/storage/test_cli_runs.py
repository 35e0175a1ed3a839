"""``leadline runs`` and ``leadline db`` through typer's runner, on a temporary database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from leadline.cli_runs import db_app, runs_app
from leadline.storage.base import StepRecord
from leadline.storage.store import SqlRunStore


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def run_id(sqlite_url: str) -> str:
    with SqlRunStore.from_url(sqlite_url) as store:
        run_id = store.create_run(
            question="Where did [bold]Dawkins[/bold] study?", mode="answer", model="m", budget={}, settings={}
        )
        store.record_step(StepRecord(run_id=run_id, key="search:0", kind="search", node="search", searches=1))
        store.finish_run(run_id, status="done", answer="Oxford", spend={"tokens": 3, "searches": 1})
        return run_id


def test_list_and_show(runner: CliRunner, sqlite_url: str, run_id: str) -> None:
    listed = runner.invoke(runs_app, ["list", "--db", sqlite_url])
    assert listed.exit_code == 0, listed.output
    assert run_id in listed.stdout and "done" in listed.stdout
    shown = runner.invoke(runs_app, ["show", run_id, "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    assert "[bold]Dawkins[/bold]" in shown.stdout  # user text is printed, never read as markup
    assert "Oxford" in shown.stdout and "search:0" in shown.stdout


def test_export_to_stdout_and_file(runner: CliRunner, sqlite_url: str, run_id: str, tmp_path: Path) -> None:
    out = runner.invoke(runs_app, ["export", run_id, "--db", sqlite_url, "--format", "json"])
    assert out.exit_code == 0
    assert json.loads(out.stdout)["run"]["answer"] == "Oxford"
    target = tmp_path / "run.html"
    written = runner.invoke(runs_app, ["export", run_id, "--db", sqlite_url, "-f", "html", "-o", str(target)])
    assert written.exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_gc(runner: CliRunner, sqlite_url: str, run_id: str) -> None:
    result = runner.invoke(runs_app, ["gc", "--db", sqlite_url, "--older-than-days", "0"])
    assert result.exit_code == 0
    assert "dropped the checkpoints of 0" in result.stdout  # no checkpointer ran in this database


def test_errors_are_one_line_and_exit_1(
    runner: CliRunner, sqlite_url: str, run_id: str, tmp_path: Path
) -> None:
    missing = runner.invoke(runs_app, ["show", "no-such-run", "--db", sqlite_url])
    assert missing.exit_code == 1
    assert missing.stderr.strip().count("\n") == 0 and "no run" in missing.stderr
    bad_format = runner.invoke(runs_app, ["export", run_id, "--db", sqlite_url, "-f", "pdf"])
    assert bad_format.exit_code == 1 and "unknown export format" in bad_format.stderr
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 1000)
    broken = runner.invoke(runs_app, ["list", "--db", f"sqlite:///{corrupt}"])
    assert broken.exit_code == 1 and "not a usable leadline database" in broken.stderr
    assert "Traceback" not in broken.output


def test_db_upgrade_and_current(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    before = runner.invoke(db_app, ["current", "--db", url])
    assert before.exit_code == 0 and "schema at none" in before.stdout
    upgraded = runner.invoke(db_app, ["upgrade", "--db", url])
    assert upgraded.exit_code == 0, upgraded.output
    after = runner.invoke(db_app, ["current", "--db", url])
    assert "up to date" in after.stdout
    with SqlRunStore.from_url(url) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
    newer = runner.invoke(db_app, ["upgrade", "--db", url])
    assert newer.exit_code == 1 and "newer than this leadline" in newer.stderr


def test_db_defaults_to_the_settings_database(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEADLINE_DB_URL", raising=False)
    result = runner.invoke(db_app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "leadline.db").is_file()
