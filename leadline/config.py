"""Typed settings, read from the environment in one place.

Library code receives a :class:`Settings` object; only this module and ``cli.py`` look at environment
variables. ``LEADLINE_HOME`` moves every file leadline writes (database, model cache, indexes), which is
how tests keep away from the user's home directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from platformdirs import user_data_dir

from leadline.errors import ConfigError

DEFAULT_MODEL = "qwen2.5-1.5b-instruct"
"""The embedded default model, chosen by ``benchmarks/answer_quality.py`` (see docs/benchmarks.md)."""

DEFAULT_CORPUS = "demo"
DEFAULT_SEARCH_LINKS = 2
"""Linked passages a search brings besides its results (local corpora; docs/corpus-index.md, "Links").
Two, chosen on train (retrieval, then ``ask``'s answers with λ pinned) and confirmed on dev
(docs/benchmarks.md, "Links")."""
MAX_SEARCH_LINKS = 16


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
    search_links: int = DEFAULT_SEARCH_LINKS
    """Passages a search of the local corpus brings besides its results because they link to them: a
    passage links to the passages whose titles it names (docs/corpus-index.md, "Links")."""
    fetch_allow: str | None = None
    """Comma list of what the fetcher may reach although private (self-hosted services): origins
    (``http://10.0.0.5:8080``, that origin only), and bare host names, addresses or networks (every port).
    Checked when the settings are made (:func:`parse_fetch_allow`)."""
    tavily_api_key: str | None = field(default=None, repr=False)
    brave_api_key: str | None = field(default=None, repr=False)
    exa_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 300.0
    n_ctx: int = 4096
    n_threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_search_links(self.search_links)
        parse_fetch_allow(self.fetch_allow)  # a malformed entry is an error now, not a silent skip later

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
        if env.get("LEADLINE_SEARCH_LINKS"):
            values["search_links"] = _env_int("LEADLINE_SEARCH_LINKS", env["LEADLINE_SEARCH_LINKS"])
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


# -- the fetch allow-list ------------------------------------------------------------------------------

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port of an origin that names none."""
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class AllowedOrigin:
    """One origin, ``scheme://host:port``: only URLs with exactly this scheme, host and port pass.

    ``host`` is a lower-case name or a canonical address (``127.0.0.1``, ``::1``); an address origin
    does not admit names that resolve to it, nor a name origin the address it resolves to.
    """

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class AllowedNetwork:
    """A bare address or CIDR network: any host name resolving into it passes, on every port."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def __str__(self) -> str:
        return str(self.network)


@dataclass(frozen=True)
class AllowedHost:
    """A bare host name (``subdomains``: written with a leading dot): that name passes, on every port,
    whatever it resolves to; another name resolving to the same address does not."""

    name: str
    subdomains: bool = False

    def __str__(self) -> str:
        return f".{self.name}" if self.subdomains else self.name


AllowEntry = AllowedOrigin | AllowedNetwork | AllowedHost
"""One parsed entry of the fetch allow-list."""


def check_search_links(n: object) -> int:
    """``n`` as a number of linked passages, or a one-line :class:`ConfigError`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SEARCH_LINKS:
        raise ConfigError(f"search links must be a whole number from 0 to {MAX_SEARCH_LINKS}, got {n!r}")
    return n


def _env_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}") from None


def _entry_error(text: str, why: str, what: str = "LEADLINE_FETCH_ALLOW entry") -> ConfigError:
    hint = " (entries: http://host:port, host, address or network)" if what.endswith("entry") else ""
    return ConfigError(f"{what} {text!r} is malformed: {why}{hint}")


def _check_host_name(text: str, name: str, what: str = "LEADLINE_FETCH_ALLOW entry") -> str:
    if not name.isascii():
        raise _entry_error(text, "write an international name in its xn-- form", what)
    name = name.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _entry_error(text, "not a host name", what)
    if all(_NUMERIC_LABEL.match(label) for label in labels):
        raise _entry_error(text, "an address must be written in dotted (or IPv6) form", what)
    return name


def _origin_name(text: str, host: str, netloc: str, what: str) -> str:
    if netloc.rsplit("@", 1)[-1].startswith("["):
        raise _entry_error(text, "not an IPv6 address in brackets", what)
    if host.endswith("."):
        raise _entry_error(text, "drop the trailing dot", what)
    return _check_host_name(text, host, what)


def _origin_entry(text: str, what: str = "LEADLINE_FETCH_ALLOW entry") -> AllowedOrigin:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _entry_error(text, str(exc), what) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _entry_error(text, "the scheme must be http or https", what)
    if parts.username is not None or parts.password is not None:
        raise _entry_error(text, "an origin has no user name or password", what)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _entry_error(text, "an origin has no path, query or fragment", what)
    host = parts.hostname or ""
    if not host:
        raise _entry_error(text, "no host", what)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = _origin_name(text, host, parts.netloc, what)
    return AllowedOrigin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one allow-list entry; raises :class:`~leadline.errors.ConfigError` saying what is wrong."""
    entry = text.strip()
    if not entry:
        raise _entry_error(text, "empty")
    if "://" in entry:
        return _origin_entry(entry)
    if any(c in entry for c in " @?#\\"):
        raise _entry_error(text, "not a host, address or network")
    bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    if "/" in bare or ":" in bare:
        try:
            return AllowedNetwork(ipaddress.ip_network(bare, strict=False))
        except ValueError:
            why = "a port needs an origin, e.g. http://host:port" if bare.count(":") == 1 else "bad network"
            raise _entry_error(text, why) from None
    try:
        return AllowedNetwork(ipaddress.ip_network(bare))
    except ValueError:
        pass
    if entry.endswith("."):
        raise _entry_error(text, "drop the trailing dot")
    subdomains = entry.startswith(".")
    return AllowedHost(_check_host_name(text, entry[1:] if subdomains else entry), subdomains)


def parse_fetch_allow(entries: str | Sequence[str | AllowEntry] | None) -> tuple[AllowEntry, ...]:
    """The fetch allow-list from a comma list (``LEADLINE_FETCH_ALLOW``) or a sequence of entries.

    Every entry must parse: a malformed one raises :class:`~leadline.errors.ConfigError` instead of
    being skipped (a skipped entry silently changes what the fetcher may reach).
    """
    if entries is None:
        return ()
    items: list[str | AllowEntry] = list(entries.split(",")) if isinstance(entries, str) else list(entries)
    parsed: list[AllowEntry] = []
    for item in items:
        if isinstance(item, AllowedOrigin | AllowedNetwork | AllowedHost):
            parsed.append(item)
        elif isinstance(entries, str) and not item.strip():
            continue  # "a,,b" and a trailing comma are harmless
        else:
            parsed.append(parse_allow_entry(item))
    return tuple(dict.fromkeys(parsed))


def origin_of(url: str, what: str = "URL") -> AllowedOrigin:
    """The origin (scheme, host, port) of a service URL such as ``--searxng-url``; ConfigError if none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise _entry_error(url, str(exc), what) from None
    return _origin_entry(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}", what)
