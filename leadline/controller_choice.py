"""Which controller a run gets by name, and where its numbers come from (issue 11, point 5).

``ask`` and ``batch`` (``--controller``) and the Python API (``Researcher(controller="auto")``) resolve
names here, from the settings' model and home: the settings turn into a controller in this layer, beside
:mod:`leadline.wiring`, so nothing below it reads them.

``--controller auto`` (the default) is the runtime controller: fitted for the model when a fitted file
exists (``--tuned FILE`` from ``tune --traces --save``; else the user's from ``tune --traces --install``;
else the package's), and on its hand-set priors otherwise — which it says, in the run record and in every
decision's reason. ``--controller fixed`` spends the budget as given (the behaviour before the runtime
controller was the default); ``adaptive`` is the two-axis controller without run-time stopping;
``runtime`` is the same as ``auto``. A ``--tuned`` file from ``tune --save`` (an outcome-table
controller) still means the adaptive controller with those curves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadline.config import Settings
from leadline.errors import ConfigError

NAMES = ("auto", "runtime", "adaptive", "fixed")


@dataclass(frozen=True)
class ControllerChoice:
    """The controller a command runs: its kind, a factory of one controller per run, and where from."""

    kind: str
    """fixed, adaptive or runtime."""
    factory: Callable[[], Any]
    source: str
    """Where its numbers came from, in one line (shown by ``ask -v``, stored with the run)."""
    fitted: Any = None
    """The :class:`~leadline.budgets.fitted.FittedController` a runtime controller runs on, or None."""


def choose_controller(name: str, tuned: Path | None, settings: Settings) -> ControllerChoice:
    """Resolve ``--controller NAME`` and ``--tuned FILE`` for ``settings.model`` (see the module)."""
    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.controller import FixedController
    from leadline.budgets.fitted import FittedController, find_fitted, is_fitted_file

    if name not in NAMES:
        raise ConfigError(f"unknown controller {name!r}; use {', '.join(NAMES)}")
    if tuned is not None and is_fitted_file(tuned):
        if name in ("fixed", "adaptive"):
            raise ConfigError(f"{tuned} is a fitted runtime controller: drop --controller {name}")
        fitted = FittedController.load(tuned)
        if fitted.model != settings.model:
            raise ConfigError(
                f"{tuned} was fitted on traces of {fitted.model!r}, not {settings.model!r}; "
                f"pass --model {fitted.model}"
            )
        return _runtime(fitted, f"{tuned}: {fitted.source}")
    if tuned is not None:  # an outcome-table controller (tune --save): the adaptive controller
        if name == "fixed":
            raise ConfigError("--tuned needs the adaptive controller; drop --controller fixed")
        from leadline.budgets.tuned import TunedModel

        model = TunedModel.load(tuned)
        return ControllerChoice("adaptive", model.controller, f"adaptive controller tuned on {tuned}")
    if name == "fixed":
        return ControllerChoice("fixed", FixedController, "fixed controller: the budget as given")
    if name == "adaptive":
        return ControllerChoice("adaptive", AdaptiveController, "adaptive controller on its prior curves")
    found, where = find_fitted(settings.model, settings.home)
    if found is None:
        return _runtime(None, where)
    return _runtime(found, f"{where}: {found.source}")


def _runtime(fitted: Any, source: str) -> ControllerChoice:
    from leadline.budgets.adaptive import AdaptiveController
    from leadline.budgets.runtime_controller import RuntimeController

    if fitted is None:
        return ControllerChoice("runtime", lambda: RuntimeController(base=AdaptiveController()), source)
    return ControllerChoice("runtime", lambda: fitted.controller(base=AdaptiveController()), source, fitted)


__all__ = ["NAMES", "ControllerChoice", "choose_controller"]
