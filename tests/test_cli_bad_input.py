"""Every bad input to the CLI is one line on stderr, a non-zero exit, and no half-written run.

Each case runs the real command (typer's runner, the default SQLite database under a temporary
LEADLINE_HOME) and then looks at what was left behind: no run in the database, no results file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadline.cli import app
from leadline.config import Settings
from leadline.storage.store import SqlRunStore

runner = CliRunner()
QUESTION = "Who wrote Hamlet?"


def _runs_left(home: Path) -> int:
    """Runs recorded in the default database (0 when the bad input kept it from being made at all)."""
    settings = Settings.from_env()
    assert settings.home == home
    if not (home / "leadline.db").exists():
        return 0
    return len(SqlRunStore.from_url(settings.database_url).list_runs())


def _one_line_error(args: list[str], home: Path) -> str:
    result = runner.invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0, result.stderr
    assert result.stdout == ""
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert _runs_left(home) == 0
    return lines[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [("0", "must be positive"), ("-5", "must be positive"), ("nan", "must be finite"), ("inf", "finite")],
)
def test_budget_seconds_that_cannot_be_a_limit(leadline_home: Path, value: str, says: str) -> None:
    line = _one_line_error(["ask", QUESTION, "--budget-seconds", value], leadline_home)
    assert "seconds" in line and says in line


@pytest.mark.parametrize(("value", "says"), [("-1", "must be zero or more"), ("-3", "must be zero or more")])
def test_budget_thinks_below_zero(leadline_home: Path, value: str, says: str) -> None:
    line = _one_line_error(["ask", QUESTION, "--budget-thinks", value], leadline_home)
    assert "budget thinks" in line and says in line


def test_unknown_controller(leadline_home: Path) -> None:
    line = _one_line_error(["ask", QUESTION, "--controller", "greedy"], leadline_home)
    assert "unknown controller 'greedy'" in line


@pytest.mark.parametrize(
    "flag",
    [
        ["ask", QUESTION, "--budget-tokens", "lots"],
        ["ask", QUESTION, "--budget-searches", "2.5"],
        ["ask", QUESTION, "--budget-seconds", "soon"],
        ["ask", QUESTION, "--budget-thinks", "1.5"],
        ["batch", "q.txt", "--thinks-per-question", "some"],
        ["batch", "q.txt", "--tokens-per-question", "many"],
        ["batch", "q.txt", "--searches-per-question", "x"],
        ["batch", "q.txt", "--concurrency", "two"],
    ],
)
def test_non_numeric_budget_flags(leadline_home: Path, flag: list[str]) -> None:
    line = _one_line_error(flag, leadline_home)
    assert "Invalid value for" in line and flag[-2] in line


@pytest.mark.parametrize(
    "url", ["mysql://user@localhost/db", "oracle+cx://x", "nosuchdialect://host/db", "not a url"]
)
def test_db_url_of_an_unknown_dialect(leadline_home: Path, tmp_path: Path, url: str) -> None:
    line = _one_line_error(["ask", QUESTION, "--db", url], leadline_home)
    assert "database" in line
    questions = tmp_path / "q.txt"
    questions.write_text(QUESTION + "\n")
    out = tmp_path / "results.jsonl"
    line = _one_line_error(["batch", str(questions), "--db", url, "--out", str(out)], leadline_home)
    assert "database" in line
    assert not out.exists()


def _questions(tmp_path: Path, name: str, content: bytes | None) -> Path:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.txt", None, "not found"),
        ("empty.txt", b"", "holds no questions"),
        ("blank.txt", b"\n   \n\t\n", "holds no questions"),
        ("binary.txt", bytes(range(128, 256)) * 4, "not a UTF-8 text file"),
        ("nul.txt", b"Who wrote Hamlet?\x00\x00\x01\x02", "binary file"),
        ("bad.jsonl", b'{not json\n{"q": "Who wrote Hamlet?"}\n', "bad.jsonl:1"),
        ("noquestion.jsonl", b'{"q": "Who wrote Hamlet?"}\n', "noquestion.jsonl:1"),
        ("list.jsonl", b'["Who wrote Hamlet?"]\n', "list.jsonl:1"),
    ],
)
def test_batch_questions_file_that_is_missing_empty_binary_or_malformed(
    leadline_home: Path, tmp_path: Path, name: str, content: bytes | None, says: str
) -> None:
    # A file with good lines beside malformed ones runs the good ones and reports the rest by line number
    # (issue #13; tests/batch/test_inputs.py); a file with no usable line is one error naming the first.
    path = _questions(tmp_path, name, content)
    out = tmp_path / "results.jsonl"
    line = _one_line_error(["batch", str(path), "--out", str(out)], leadline_home)
    assert says in line
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_batch_concurrency_below_one(leadline_home: Path, tmp_path: Path, value: str) -> None:
    path = _questions(tmp_path, "q.txt", (QUESTION + "\n").encode())
    out = tmp_path / "results.jsonl"
    line = _one_line_error(["batch", str(path), "--concurrency", value, "--out", str(out)], leadline_home)
    assert "--concurrency must be at least 1" in line
    assert not out.exists()


def test_a_long_error_stays_on_one_line(leadline_home: Path) -> None:
    url = "mysql+averyveryverylongdrivername://user:secret@a-very-long-host-name.example:3306/db"
    line = _one_line_error(["resume", "abc", "--db", url], leadline_home)
    assert "unsupported database" in line


@pytest.mark.parametrize("value", ["-1", "17"])
def test_search_links_out_of_range(leadline_home: Path, value: str) -> None:
    line = _one_line_error(["ask", QUESTION, "--search-links", value], leadline_home)
    assert "search links must be a whole number from 0 to 16" in line


def test_search_links_from_the_environment_that_is_not_a_number(
    leadline_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADLINE_SEARCH_LINKS", "two")
    result = runner.invoke(app, ["ask", QUESTION])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.strip() == "error: LEADLINE_SEARCH_LINKS must be a whole number, got 'two'"
    monkeypatch.delenv("LEADLINE_SEARCH_LINKS")
    assert _runs_left(leadline_home) == 0
