"""The files of a report folder: bootstrap intervals, the folder check, and writing it atomically.

Shared by the outcome-table report (:mod:`leadline.evals.report`) and the traces report
(:mod:`leadline.evals.traces_report`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from leadline.errors import ConfigError, LeadlineError

FloatArray = npt.NDArray[np.float64]
MARKER = ".leadline-report"
"""A file in every report folder: a folder holding it may be replaced by a new report."""
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% bootstrap interval (over questions)."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(values: Sequence[float] | FloatArray, *, seed: int = 0, n: int = BOOTSTRAP) -> Interval:
    """Mean and 95% percentile-bootstrap interval of ``values`` (resampling questions, seeded)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n, arr.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Interval(float(arr.mean()), float(low), float(high))


def check_report_dir(path: Path) -> None:
    """Fail now, not after a long sweep, if a report cannot be written at ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"report directory {path} is a file")
    if path.is_dir() and any(path.iterdir()) and not (path / MARKER).exists():
        raise ConfigError(f"report directory {path} holds other files; give an empty or new directory")
    parent = path.parent if path.parent != Path("") else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"cannot write the report: {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the report: {parent} is not writable")


def write_atomically(path: Path, build: Callable[[Path], None]) -> None:
    """Build a report folder with ``build(scratch)`` in a scratch folder beside ``path``, then move it into
    place (replacing an earlier report); on any failure nothing is left behind."""
    parent = path.parent if path.parent != Path("") else Path(".")
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as exc:
        raise ConfigError(f"cannot write the report in {parent}: {exc.strerror or exc}") from exc
    umask = os.umask(0)
    os.umask(umask)
    try:
        scratch.chmod(0o777 & ~umask)  # mkdtemp makes it private; a report is an ordinary folder
        build(scratch)
        (scratch / MARKER).write_text("written by leadline tune --report\n", encoding="utf-8")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
            path.rename(old / path.name)
            scratch.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            scratch.rename(path)
    except (OSError, LeadlineError) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        if isinstance(exc, LeadlineError):
            raise
        raise ConfigError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


__all__ = ["BOOTSTRAP", "MARKER", "Interval", "bootstrap", "check_report_dir", "write_atomically"]
