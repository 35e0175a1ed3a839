"""The fitted runtime controller file: round trip, where ask/batch find one, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadline.budgets import fitted as fitted_mod
from leadline.budgets.fitted import (
    FittedController,
    find_fitted,
    is_fitted_file,
    model_file_name,
    user_fitted_path,
)
from leadline.budgets.runtime import RuntimeModel, SignalModel
from leadline.errors import ConfigError
from leadline.evals.traces import read_traces


def make(model: str = "tiny-model", price: float = 3e-5) -> FittedController:
    runtime = RuntimeModel.beta_prior(
        0.5,
        0.7,
        search_signal=SignalModel((0.1, 0.1, 0.1), (0.8, 0.2, 0.8)),
        think_signal=SignalModel((0.3, 0.3, 0.3), (0.1, 0.5, 0.5)),
        points=8,
    )
    return FittedController(
        model=model,
        runtime=runtime,
        search_scale=2.0,
        token_scale=300.0,
        kind_prior=(0.5, 0.2, 0.3),
        price=price,
        provenance={"train_questions": 60, "traces_sha256": "ab" * 32, "fitted_at": "2026-12-01"},
    )


def test_a_fitted_controller_round_trips_and_runs_on_its_numbers(tmp_path: Path) -> None:
    f = make()
    path = tmp_path / "c.json"
    f.save(path)
    assert is_fitted_file(path)
    back = FittedController.load(path)
    assert back == f
    ctl = back.controller()
    assert ctl.price == 3e-5 and ctl.search_scale == 2.0 and ctl.token_scale == 300.0
    assert ctl.kind_prior == (0.5, 0.2, 0.3)
    assert "fitted on 60 train traces of tiny-model" in ctl.name and "abababababab" in ctl.name
    assert ctl.model.amplitudes == f.runtime.amplitudes


def test_bad_fitted_files_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something/else"}))
    assert not is_fitted_file(bad)
    with pytest.raises(ConfigError, match="not a fitted runtime controller"):
        FittedController.load(bad)
    data = make().to_dict()
    data["search_scale"] = -1
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="positive scales"):
        FittedController.load(bad)
    with pytest.raises(ConfigError, match="cannot read fitted controller"):
        FittedController.load(tmp_path / "missing.json")


def test_the_fitted_think_size_travels_with_the_file_and_sizes_the_runs_thinks(tmp_path: Path) -> None:
    from dataclasses import replace

    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.ledger import Budget

    f = replace(make(), think_tokens=80)
    path = tmp_path / "c.json"
    f.save(path)
    back = FittedController.load(path)
    assert back.think_tokens == 80 and "80-token thinks" in back.source
    # The allocation's own think cap (about a quarter of the tokens here) is replaced by the fitted one ...
    ctl = back.controller(base=AdaptiveController())
    assert ctl.assess("Who wrote Hamlet?", Budget(tokens=1024, searches=4)).think_tokens == 80
    # ... but never past the tokens the run has left for its answer.
    assert back.controller().assess("Who wrote Hamlet?", Budget(tokens=100, searches=4)).think_tokens == 36
    # A file from before the field was fitted on the recorder's 96-token thinks.
    data = f.to_dict()
    del data["think_tokens"]
    path.write_text(json.dumps(data))
    assert FittedController.load(path).think_tokens == fitted_mod.TRACE_THINK_TOKENS == 96
    for bad in (0, 1.5, "96", True):
        data["think_tokens"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigError):
            FittedController.load(path)


def test_the_users_fitted_controller_wins_over_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "pkg"
    monkeypatch.setattr(fitted_mod, "PACKAGED_DIR", packaged)
    home = tmp_path / "home"
    found, why = find_fitted("tiny-model", home)
    assert found is None and "priors" in why
    make(price=1e-4).save(packaged / model_file_name("tiny-model"))
    found, why = find_fitted("tiny-model", home)
    assert found is not None and found.price == 1e-4 and why.startswith("packaged")
    make(price=2e-4).save(user_fitted_path(home, "tiny-model"))
    found, why = find_fitted("tiny-model", home)
    assert found is not None and found.price == 2e-4 and why.startswith("yours")
    make(model="another").save(user_fitted_path(home, "tiny-model"))
    with pytest.raises(ConfigError, match="fitted on traces of 'another', not 'tiny-model'"):
        find_fitted("tiny-model", home)


def test_every_shipped_fitted_controller_names_the_committed_traces_it_was_fitted_on() -> None:
    # A fitted file ships only with the traces it was fitted on (docs/traces.md): none is invented.
    import hashlib

    from leadline.llm.models import PACKAGED_MODELS

    data = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
    for path in sorted(fitted_mod.PACKAGED_DIR.glob("*.json")):
        f = FittedController.load(path)
        assert f.model in PACKAGED_MODELS and path.name == model_file_name(f.model)
        traces = data / str(f.provenance["traces_file"])
        assert hashlib.sha256(traces.read_bytes()).hexdigest() == f.provenance["traces_sha256"], path
        assert int(f.provenance["train_questions"]) >= 60, path
        # Its runs think in the steps its traces recorded, so each think costs what the fit priced.
        train = [t for t in read_traces(traces).traces if t.split == "train"]
        thinks = sum(1 for t in train for s in t.steps if s.action == "think")
        assert f.think_tokens == round(sum(t.steps[-1].tokens for t in train) / thinks), path


def test_model_names_become_safe_file_names() -> None:
    assert model_file_name("qwen2.5-0.5b-instruct") == "qwen2.5-0.5b-instruct.json"
    assert model_file_name("org/Model 7B:latest") == "org_Model_7B_latest.json"
    assert model_file_name("../..") == "model.json"
