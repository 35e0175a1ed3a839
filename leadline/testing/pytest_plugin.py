"""pytest fixtures of :mod:`leadline.testing`.

Load them with ``pytest_plugins = ["leadline.testing.pytest_plugin"]`` in a root ``conftest.py``, or
import the fixture into a ``conftest.py`` by name. Kept apart from the fakes so that
``import leadline.testing`` does not need pytest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadline.testing.isolation import Isolation
from leadline.testing.isolation import no_real_io as _no_real_io


@pytest.fixture
def no_real_io() -> Iterator[Isolation]:
    """The test fails if it loads a real model or opens a real network connection (see ``no_real_io``)."""
    with _no_real_io() as guard:
        yield guard


__all__ = ["no_real_io"]
