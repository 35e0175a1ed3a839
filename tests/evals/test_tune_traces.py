"""`leadline tune --traces`: record with a scripted model, fit on train, evaluate on dev, save/install the
fitted controller, the tuning report from traces; `ask` and `batch` then run it by default."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadline import Researcher, Settings
from leadline.cli import app
from leadline.controller_choice import choose_controller
from leadline.evals.traces import Trace
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM

from .test_traces import _docs, _population, _respond, _trace

runner = CliRunner()


def _write(path: Path, traces: Sequence[Trace], extra: Sequence[str] = ()) -> Path:
    path.write_text(
        "".join(json.dumps(t.to_dict()) + "\n" for t in traces) + "".join(x + "\n" for x in extra)
    )
    return path


def _population_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "traces.jsonl", _population(7, 40, "train") + _population(8, 40, "dev"))


def test_fit_and_evaluate_print_the_key_figures_and_save_and_report(tmp_path: Path) -> None:
    traces = _population_file(tmp_path)
    saved, report = tmp_path / "controller.json", tmp_path / "report"
    result = runner.invoke(
        app, ["tune", "--traces", str(traces), "--no-run", "--save", str(saved), "--report", str(report)]
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith("traces_efficiency=") and float(lines[-2].split("=")[1]) > 1.0
    assert lines[-1].startswith("traces_f1_gain_at_equal_compute=")
    assert any(x.startswith("traces_efficiency_interval=") for x in lines)
    assert "fitted the runtime controller on 40 train traces of m" in result.stderr
    assert json.loads(saved.read_text())["provenance"]["train_questions"] == 40
    names = {p.name for p in report.iterdir()}
    assert {"report.md", "report.html", "controller.json", "quality_vs_compute.png"} <= names
    assert {"quality_vs_searches_tokens.png", "where_controller_stopped.png"} <= names
    assert "ask --tuned controller.json" in (report / "report.md").read_text()


def test_bad_traces_are_skipped_and_bad_splits_or_models_are_one_line_errors(tmp_path: Path) -> None:
    gap = _trace("gap", "train", [0.0, 1.0], [1, 1]).to_dict()
    gap["steps"][1]["step"] = 3
    traces = _write(
        tmp_path / "t.jsonl", _population(7, 20, "train") + _population(8, 10, "dev"), [json.dumps(gap)]
    )
    result = runner.invoke(app, ["tune", "--traces", str(traces), "--no-run"])
    assert result.exit_code == 0, result.stderr
    assert "skipped" in result.stderr and "missing steps" in result.stderr
    only_dev = _write(tmp_path / "dev.jsonl", _population(8, 10, "dev"))
    for args, says in (
        (["--traces", str(only_dev), "--no-run"], "no usable train traces"),
        (["--traces", str(traces), "--no-run", "--model", "other"], "a trace of model 'm', not 'other'"),
        (["--install"], "--install needs --traces"),
        (["--traces", str(tmp_path / "none.jsonl"), "--no-run"], "does not exist"),
    ):
        result = runner.invoke(app, ["tune", *args])
        assert result.exit_code == 1, (args, result.stdout)
        err = " ".join(result.stderr.split())
        assert err.startswith("error:") and says in err and "Traceback" not in err, err


def _scripted_researcher(monkeypatch: pytest.MonkeyPatch, store: MemoryRunStore | None = None) -> None:
    real = Researcher

    def make(settings: Any = None, **kw: Any) -> Researcher:
        kw.setdefault("llm", ScriptedLLM(_respond))
        kw.setdefault("search", FakeSearch(_docs()))
        kw.setdefault("store", store if store is not None else MemoryRunStore())
        return real(Settings(model="m"), **kw)

    monkeypatch.setattr("leadline.api.Researcher", make)


def _questions(path: Path, offset: int, n: int) -> Path:
    rows = [
        {"id": f"q{offset + i}", "answers": ["Balliol College"],
         "question": f"Which college did the author of The Selfish Gene attend ({i})?"}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_one_resumable_command_per_split_records_then_fits_and_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted_researcher(monkeypatch)
    traces = tmp_path / "traces.jsonl"
    train, dev = _questions(tmp_path / "train.jsonl", 0, 4), _questions(tmp_path / "dev.jsonl", 100, 3)
    base = ["tune", "--traces", str(traces), "--points", "1500x4"]
    result = runner.invoke(app, [*base[:1], str(train), *base[1:], "--split", "train", "--limit", "2"])
    assert result.exit_code == 0, result.stderr
    assert "2 traces recorded" in result.stderr and "0 dev traces" in result.stderr
    monkeypatch.setenv("COLUMNS", "30")  # a narrow console: a progress line must still not wrap
    result = runner.invoke(app, [*base[:1], str(train), *base[1:], "--split", "train"])  # resumes
    assert "4 train questions at 1500 tokens x 4 searches: 2 traces to record" in result.stderr
    progress = [x for x in result.stderr.splitlines() if x.startswith("[")]
    assert len(progress) == 2 and all(x.startswith(("[3/4] q", "[4/4] q")) for x in progress)
    assert all("probe F1" in x for x in progress)  # one whole line a trace, brackets kept literally
    result = runner.invoke(app, [*base[:1], str(dev), *base[1:], "--split", "dev"])
    assert result.exit_code == 0, result.stderr
    assert "traces_efficiency=" in result.stdout  # both splits there: fitted on train, evaluated on dev
    ids = [json.loads(x)["question_id"] for x in traces.read_text().splitlines()]
    assert sorted(ids) == ["q0", "q1", "q100", "q101", "q102", "q2", "q3"]


def test_an_installed_fitted_controller_is_the_default_of_ask_and_says_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leadline_home: Path
) -> None:
    settings = Settings(model="m", home=leadline_home)
    choice = choose_controller("auto", None, settings)
    assert choice.kind == "runtime" and choice.fitted is None and "runs on its priors" in choice.source
    store = MemoryRunStore()
    _scripted_researcher(monkeypatch, store)
    question = "Which college did the author of The Selfish Gene attend?"
    # no fitted controller for the model: the runtime controller on its priors, and it says so
    result = runner.invoke(app, ["ask", question, "--model", "m", "-v", "-q", "--json"])
    assert result.exit_code == 0, result.stderr
    assert "runs on its priors" in " ".join(result.stderr.split())
    assert "priors (no traces fitted)" in store.list_runs()[0].settings["controller"]
    traces = _population_file(tmp_path)
    result = runner.invoke(app, ["tune", "--traces", str(traces), "--no-run", "--install"])
    assert result.exit_code == 0, result.stderr
    assert (leadline_home / "controllers" / "m.json").is_file()
    choice = choose_controller("auto", None, settings)
    assert choice.kind == "runtime" and choice.fitted is not None and choice.source.startswith("yours")
    assert choose_controller("fixed", None, settings).kind == "fixed"

    result = runner.invoke(app, ["ask", question, "--model", "m", "-v", "-q", "--json"])
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "controller: runtime (yours:" in err and "fitted on 40 train traces of m" in err
    assert "decide: " in err and "runtime controller (dynamic programme; fitted: fitted on 40" in err
    run = store.list_runs()[0]
    assert "fitted on 40 train traces of m" in run.settings["controller"]
    # --controller fixed keeps the old behaviour, and says so in the run record
    result = runner.invoke(app, ["ask", question, "--model", "m", "-q", "--json", "--controller", "fixed"])
    assert result.exit_code == 0, result.stderr
    assert store.list_runs()[0].settings["controller"] == "FixedController"


def test_a_fitted_file_for_another_model_is_a_one_line_error(tmp_path: Path) -> None:
    traces = _population_file(tmp_path)
    saved = tmp_path / "c.json"
    assert (
        runner.invoke(app, ["tune", "--traces", str(traces), "--no-run", "--save", str(saved)]).exit_code == 0
    )
    result = runner.invoke(app, ["ask", "Who wrote Hamlet?", "--model", "other", "--tuned", str(saved)])
    assert result.exit_code == 1
    assert "fitted on traces of 'm', not 'other'" in " ".join(result.stderr.split())


def test_a_batch_carries_the_fitted_controller_to_its_workers(tmp_path: Path) -> None:
    from leadline.batch.plan import BatchOptions
    from leadline.batch.worker import _runtime_controller
    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.runtime_controller import RuntimeController
    from leadline.errors import ConfigError
    from leadline.evals.traces import read_traces
    from leadline.evals.traces_eval import fit_controller

    traces = _population_file(tmp_path)
    fitted, _, _ = fit_controller(read_traces(traces), traces_file=traces)
    options = BatchOptions(controller="runtime", runtime=fitted.to_dict())
    assert BatchOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options  # stored as JSON
    ctl = _runtime_controller(options, AdaptiveController(), price=0.0)
    assert isinstance(ctl, RuntimeController) and ctl.price == fitted.price
    assert "fitted on 40 train traces of m" in ctl.name
    # a step must pay at the batch price too; without a fitted file: the priors, said so
    assert _runtime_controller(options, AdaptiveController(), price=1.0).price == 1.0
    priors = _runtime_controller(BatchOptions(controller="runtime"), AdaptiveController(), price=0.0)
    assert isinstance(priors, RuntimeController) and "priors" in priors.name
    with pytest.raises(ConfigError, match="needs the runtime controller"):
        BatchOptions(controller="adaptive", runtime=fitted.to_dict())


def test_the_report_warns_when_the_train_controller_loses_to_the_best_fixed_budget_on_dev() -> None:
    from leadline.evals.traces_eval import TracesReport
    from leadline.evals.traces_report import _warning

    def report(at_train_f1: float) -> TracesReport:
        return TracesReport(
            fixed=[(0, 0.0, 0.2), (2, 596.0, 0.467)],
            controller=[],
            oracle=[],
            best_fixed_steps=2,
            best_fixed_f1=0.467,
            best_fixed_se=0.078,
            best_fixed_compute=596.0,
            compute_to_match=1187.0,
            compute_interval=(1059.0, float("nan")),
            efficiency=0.5,
            f1_gain_at_equal_compute=-0.26,
            f1_gain_interval=(-0.42, -0.10),
            questions=35,
            train_price=0.01,
            at_train_price=(0.0, at_train_f1),
        )

    warning = "\n".join(_warning(report(0.208)))
    assert "falls short of the best fixed budget" in warning and "0.208" in warning and "2 steps" in warning
    assert "`--controller fixed --budget-searches 1 --budget-thinks 1`" in warning  # a setting that exists
    assert _warning(report(0.40)) == []  # within the best fixed budget's standard error
    assert _warning(report(float("nan"))) == []


def test_a_fixed_budget_of_steps_is_named_as_the_settings_that_run_it() -> None:
    from leadline.evals.traces_report import fixed_budget_flags

    assert fixed_budget_flags(1) == "`--controller fixed --budget-searches 1 --budget-thinks 0`"
    assert fixed_budget_flags(2) == "`--controller fixed --budget-searches 1 --budget-thinks 1`"
    assert fixed_budget_flags(5).startswith("`--controller fixed --budget-searches 3 --budget-thinks 2`")
    assert "nearest" in fixed_budget_flags(5)
    assert fixed_budget_flags(0).startswith("none: the loop always searches")


def test_the_html_report_renders_bold_code_and_links() -> None:
    from leadline.evals.traces_report import _html

    page = _html("- Runtime controller: [`controller.json`](controller.json) <x>\n\n**Note** use `--x 1`")
    assert '<a href="controller.json"><code>controller.json</code></a> &lt;x&gt;' in page
    assert "<p><strong>Note</strong> use <code>--x 1</code></p>" in page
    assert "**" not in page and "`" not in page


def test_the_python_api_takes_a_controller_by_name_as_ask_does(tmp_path: Path, leadline_home: Path) -> None:
    from leadline.errors import ConfigError

    settings = Settings(model="m", home=leadline_home)
    question = "Which college did the author of The Selfish Gene attend?"
    result = runner.invoke(
        app, ["tune", "--traces", str(_population_file(tmp_path)), "--no-run", "--install"]
    )
    assert result.exit_code == 0, result.stderr
    store = MemoryRunStore()

    def researcher(controller: Any) -> Researcher:
        llm, search = ScriptedLLM(_respond), FakeSearch(_docs())
        return Researcher(settings, llm=llm, search=search, store=store, controller=controller)

    with researcher("auto") as r:
        assert r.research(question).answer == "Balliol College"
        r.research(question)  # one controller per run, the fitted file read once
    runs = store.list_runs()
    assert len(runs) == 2 and all("fitted on 40 train traces of m" in x.settings["controller"] for x in runs)
    with researcher(None) as r:  # the API's default: the budget as given
        run_id = r.research(question).run_id
    assert store.get_run(run_id).settings["controller"] == "FixedController"
    with pytest.raises(ConfigError, match="unknown controller 'greedy'"):
        researcher("greedy")
