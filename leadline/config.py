"""Typed settings, read from the environment in one place.

Library code receives a :class:`Settings` object; only this module and ``cli.py`` look at environment
variables. ``LEADLINE_HOME`` moves every file leadline writes (database, model cache, indexes), which is
how tests keep away from the user's home directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from platformdirs import user_data_dir

DEFAULT_MODEL = "qwen2.5-0.5b-instruct"
"""The embedded default model, chosen by ``benchmarks/answer_quality.py`` (see docs/benchmarks.md)."""

DEFAULT_CORPUS = "demo"


def data_home() -> Path:
    """The directory leadline writes to: ``$LEADLINE_HOME`` or the platform's user data directory."""
    explicit = os.environ.get("LEADLINE_HOME")
    return Path(explicit) if explicit else Path(user_data_dir("leadline", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a run needs to know about its surroundings. Immutable; use :meth:`with_` to vary."""

    home: Path = field(default_factory=data_home)
    db_url: str | None = None
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    corpus: str = DEFAULT_CORPUS
    search: str = "local"
    """local, searxng, tavily, brave, exa, duckduckgo, or a comma list (a fallback chain)."""
    searxng_url: str | None = None
    fetch_allow: str | None = None
    """Hosts, addresses or networks the fetcher may reach although private (self-hosted services)."""
    tavily_api_key: str | None = field(default=None, repr=False)
    brave_api_key: str | None = field(default=None, repr=False)
    exa_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 300.0
    n_ctx: int = 4096
    n_threads: int | None = None
    seed: int = 0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``LEADLINE_*`` environment variables, then explicit overrides (not None)."""
        env = os.environ
        values: dict[str, object] = {}
        if env.get("LEADLINE_DB_URL"):
            values["db_url"] = env["LEADLINE_DB_URL"]
        if env.get("LEADLINE_MODEL"):
            values["model"] = env["LEADLINE_MODEL"]
        if env.get("LEADLINE_BASE_URL"):
            values["base_url"] = env["LEADLINE_BASE_URL"]
        if env.get("LEADLINE_API_KEY") or env.get("OPENAI_API_KEY"):
            values["api_key"] = env.get("LEADLINE_API_KEY") or env.get("OPENAI_API_KEY")
        if env.get("LEADLINE_CORPUS"):
            values["corpus"] = env["LEADLINE_CORPUS"]
        if env.get("LEADLINE_SEARXNG_URL"):
            values["searxng_url"] = env["LEADLINE_SEARXNG_URL"]
            values["search"] = "searxng"
        if env.get("LEADLINE_SEARCH"):
            values["search"] = env["LEADLINE_SEARCH"]
        if env.get("LEADLINE_FETCH_ALLOW"):
            values["fetch_allow"] = env["LEADLINE_FETCH_ALLOW"]
        for provider in ("tavily", "brave", "exa"):
            key = env.get(f"{provider.upper()}_API_KEY")
            if key:
                values[f"{provider}_api_key"] = key
        if env.get("LEADLINE_THREADS"):
            values["n_threads"] = int(env["LEADLINE_THREADS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        """A copy with the given fields changed (None values leave a field as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the run database (SQLite in ``home`` unless set)."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home / 'leadline.db'}"

    @property
    def models_dir(self) -> Path:
        """Where downloaded or joined model files are cached."""
        return self.home / "models"

    @property
    def indexes_dir(self) -> Path:
        """Where corpus indexes are kept."""
        return self.home / "indexes"
