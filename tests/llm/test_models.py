"""Packaged GGUF models: found through package metadata, joined, verified, cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline.errors import ModelNotFoundError
from leadline.llm import models
from leadline.llm.models import PACKAGED_MODELS, PackagedModel, assemble, model_status, resolve_model_file


def test_packaged_models_are_installed_and_assemble_to_the_pinned_hash(tmp_path: Path) -> None:
    status = {s.name: s for s in model_status(tmp_path)}
    assert set(status) == set(PACKAGED_MODELS)
    assert status["qwen2.5-0.5b-instruct"].installed
    path = resolve_model_file("smollm2-135m-instruct", tmp_path)
    assert path.stat().st_size == PACKAGED_MODELS["smollm2-135m-instruct"].size
    assert path.read_bytes()[:4] == b"GGUF"
    assert model_status(tmp_path)[1].cached
    # a second resolve uses the cache (same file, not rewritten)
    mtime = path.stat().st_mtime_ns
    assert resolve_model_file("smollm2-135m-instruct", tmp_path) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_part_that_fails_verification_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    real = PACKAGED_MODELS["smollm2-135m-instruct"]
    tampered = PackagedModel(
        name="tampered",
        description="",
        parts=real.parts,
        sha256="0" * 64,
        size=real.size,
        filename="tampered.gguf",
        license="",
        install="pip install nothing",
    )
    with pytest.raises(ModelNotFoundError, match="failed verification"):
        assemble(tampered, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_weight_package_says_how_to_install(tmp_path: Path) -> None:
    missing = PackagedModel(
        name="missing",
        description="",
        parts=(("no-such-dist-leadline", "x.bin"),),
        sha256="0" * 64,
        size=1,
        filename="m.gguf",
        license="",
        install="pip install no-such-dist-leadline",
    )
    with pytest.raises(ModelNotFoundError, match="pip install no-such-dist-leadline"):
        assemble(missing, tmp_path)


def test_unknown_model_names_the_packaged_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"qwen2\.5-0\.5b-instruct"):
        resolve_model_file("gpt-17", tmp_path)
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_model_file(str(tmp_path / "nope.gguf"), tmp_path)


def test_cache_is_rebuilt_when_the_marker_does_not_match(tmp_path: Path) -> None:
    path = resolve_model_file("smollm2-135m-instruct", tmp_path)
    models._marker(path).write_text("bad\n")
    assert not model_status(tmp_path)[1].cached
    assert resolve_model_file("smollm2-135m-instruct", tmp_path) == path
    assert model_status(tmp_path)[1].cached
