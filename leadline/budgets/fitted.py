"""A runtime controller fitted on anytime traces: the file a model ships and ``ask``/``batch`` use.

``leadline tune --traces FILE --save PATH`` (or ``--install``) fits the runtime controller's belief
(:class:`~leadline.budgets.runtime.RuntimeModel`), its curve scales, its kind prior and its stop rule
(the price per token-equivalent below which a step is not bought) on a model's *train* traces
(:mod:`leadline.evals.traces_eval`). The result is a small versioned JSON file with its provenance: the
model the traces were recorded with, the trace file's sha256, the number of train questions, the date and
the leadline version that fitted it.

Where ``ask`` and ``batch`` find one for a model (:func:`find_fitted`), first match wins:

1. ``--tuned FILE`` (a fitted runtime controller, or a ``tune --save`` outcome-table controller);
2. the user's own: ``$LEADLINE_HOME/controllers/<model>.json`` (``tune --traces FILE --install``);
3. the package's: ``leadline/budgets/fitted/<model>.json``, shipped with the package for a packaged
   model whose traces are committed.

Without one, the runtime controller runs on its hand-set priors and says so in every decision's reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadline.budgets.runtime import RuntimeModel
from leadline.budgets.runtime_controller import SCALE_SD, RuntimeController
from leadline.errors import ConfigError

FORMAT = "leadline.runtime-controller/1"
PACKAGED_DIR = Path(__file__).resolve().parent / "fitted"
"""Fitted controllers shipped with the package, one ``<model>.json`` per packaged model with traces."""
TRACE_THINK_TOKENS = 96
"""The cap of one think step in a recorded trace (the trace recorder's); a file without ``think_tokens``
was fitted on traces with thinks of this size."""


def model_file_name(model: str) -> str:
    """The file name of ``model``'s fitted controller (other than letters, digits and ``.-_``: ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip()).strip("._") or "model"
    return f"{safe}.json"


@dataclass(frozen=True)
class FittedController:
    """The numbers of a runtime controller fitted on one model's train traces, with their provenance."""

    model: str
    """The model the traces were recorded with (the controller is for that model only)."""
    runtime: RuntimeModel
    search_scale: float
    """Searches to reach 63% of the search curve (σ)."""
    token_scale: float
    """Reasoning tokens to reach 63% of the token curve (τ)."""
    kind_prior: tuple[float, float, float]
    price: float
    """The stop rule: quality per token-equivalent below which no step is bought (chosen on train)."""
    scale_sd: float = SCALE_SD
    """Spread (log scale) of a question's curve scales around the fitted ones."""
    think_tokens: int = TRACE_THINK_TOKENS
    """The cap of one think step in the traces it was fitted on: the runs it steers take thinks of this
    size, so that each step costs and buys what the fit priced."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """traces_sha256, traces_file, train_questions, fitted_at (UTC date), leadline_version."""

    @property
    def source(self) -> str:
        """Where the numbers came from, in one line."""
        p = self.provenance
        sha = str(p.get("traces_sha256", ""))[:12] or "?"
        return (
            f"fitted on {p.get('train_questions', '?')} train traces of {self.model} "
            f"(traces sha256 {sha}, {p.get('fitted_at', '?')}, price {self.price:.2g}, "
            f"{self.think_tokens}-token thinks)"
        )

    def controller(self, **overrides: Any) -> RuntimeController:
        """A runtime controller for one run with these numbers (``overrides``: e.g. ``base``, ``pool``)."""
        values: dict[str, Any] = {
            "model": RuntimeModel(
                amplitudes=self.runtime.amplitudes,
                amplitude_weights=self.runtime.amplitude_weights,
                search_signal=self.runtime.search_signal,
                think_signal=self.runtime.think_signal,
                source=self.source,
            ),
            "price": self.price,
            "search_scale": self.search_scale,
            "token_scale": self.token_scale,
            "kind_prior": self.kind_prior,
            "scale_sd": self.scale_sd,
            "think_tokens": self.think_tokens,
        }
        values.update(overrides)
        return RuntimeController(**values)

    # -- JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fitted controller as JSON-ready data (versioned)."""
        return {
            "format": FORMAT,
            "model": self.model,
            "runtime": self.runtime.to_dict(),
            "search_scale": self.search_scale,
            "token_scale": self.token_scale,
            "kind_prior": list(self.kind_prior),
            "price": self.price,
            "scale_sd": self.scale_sd,
            "think_tokens": self.think_tokens,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FittedController:
        """Rebuild from :meth:`to_dict` data; a ConfigError for another format or a malformed file."""
        if data.get("format") != FORMAT:
            raise ConfigError(f"not a fitted runtime controller ({FORMAT}): format {data.get('format')!r}")
        try:
            prior = tuple(float(x) for x in data["kind_prior"])
            if len(prior) != 3:
                raise ValueError("kind_prior needs 3 values")
            fitted = cls(
                model=str(data["model"]),
                runtime=RuntimeModel.from_dict(data["runtime"]),
                search_scale=float(data["search_scale"]),
                token_scale=float(data["token_scale"]),
                kind_prior=(prior[0], prior[1], prior[2]),
                price=float(data["price"]),
                scale_sd=float(data.get("scale_sd", SCALE_SD)),
                think_tokens=_whole(data.get("think_tokens", TRACE_THINK_TOKENS)),
                provenance=dict(data.get("provenance") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a valid fitted runtime controller: {exc}") from exc
        if not (
            fitted.search_scale > 0
            and fitted.token_scale > 0
            and fitted.price >= 0
            and fitted.scale_sd >= 0
            and fitted.think_tokens > 0
        ):
            raise ConfigError(
                "a fitted runtime controller needs positive scales and think size and a non-negative price"
            )
        return fitted

    def save(self, path: Path) -> None:
        """Write the controller as JSON (creating the folder); a ConfigError when it cannot be written."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write fitted controller {path}: {exc.strerror or exc}") from exc

    @classmethod
    def load(cls, path: Path) -> FittedController:
        """Read a fitted controller; a ConfigError for a missing, unreadable or invalid file."""
        data = read_json(path, "fitted controller")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}") from exc


def _whole(value: Any) -> int:
    """A whole number from JSON (1.5 or "96" is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"think_tokens must be a whole number, not {value!r}")
    return int(value)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; a ConfigError naming ``what`` when it cannot be read or is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not a {what} (not JSON: {exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a {what}")
    return data


def is_fitted_file(path: Path) -> bool:
    """True when ``path`` holds a fitted runtime controller (not an outcome-table ``TunedModel``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def user_fitted_path(home: Path, model: str) -> Path:
    """Where ``tune --install`` saves a user's fitted controller for ``model`` (under ``home``)."""
    return Path(home) / "controllers" / model_file_name(model)


def packaged_fitted_path(model: str) -> Path:
    """Where the package ships ``model``'s fitted controller (the file may not exist)."""
    return PACKAGED_DIR / model_file_name(model)


def find_fitted(model: str, home: Path | None) -> tuple[FittedController | None, str]:
    """The fitted controller ``ask``/``batch`` use for ``model`` and where it came from, or (None, why).

    The user's (``home/controllers``) wins over the package's. A file fitted for another model is an
    error, not a silent fallback.
    """
    candidates = [("yours", user_fitted_path(home, model))] if home is not None else []
    candidates.append(("packaged", packaged_fitted_path(model)))
    for where, path in candidates:
        if path.is_file():
            fitted = FittedController.load(path)
            if fitted.model != model:
                raise ConfigError(f"{path} was fitted on traces of {fitted.model!r}, not {model!r}")
            return fitted, f"{where}: {path}"
    return None, f"no fitted controller for {model}: the runtime controller runs on its priors"


__all__ = [
    "FORMAT",
    "PACKAGED_DIR",
    "TRACE_THINK_TOKENS",
    "FittedController",
    "find_fitted",
    "is_fitted_file",
    "model_file_name",
    "packaged_fitted_path",
    "read_json",
    "user_fitted_path",
]
