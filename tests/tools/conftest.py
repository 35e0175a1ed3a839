"""Fixtures shared by the tool tests."""

from leadline.testing.pytest_plugin import no_real_io  # noqa: F401  (a fixture, used by name)
