"""How the fetcher behaves: deadlines, caps, retries, politeness and the SSRF allow-list, in one value.

Kept apart from :mod:`leadline.tools.fetcher` (the machinery) because it is configuration: wiring builds
one from the settings (:func:`leadline.wiring.fetch_policy`), tests and benchmarks tighten or loosen it.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadline.config import parse_fetch_allow
from leadline.errors import ConfigError

DEFAULT_CONTENT_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "application/pdf",
)


@dataclass(frozen=True, kw_only=True)
class FetchPolicy:
    """How the fetcher behaves. Defaults suit the open web; tests and benchmarks tighten or loosen them."""

    deadline_s: float = 20.0
    """Total wall time of one fetch: robots.txt, redirects, retries and body included."""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    """Cap on the decoded body; a larger page is refused (``reason="too_large"``), not truncated."""
    max_redirects: int = 5
    allowed_content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    """MIME types accepted; ``"text/*"`` style wildcards work."""
    allow: tuple[str, ...] = ()
    """SSRF allow-list (:class:`~leadline.tools.ssrf.AddressPolicy`): origins (``http://10.0.0.5:8080``,
    that origin only), and bare host names, addresses or CIDR networks (every port), reachable although
    not public."""
    user_agent: str = "leadline/0.1 (research agent; honours robots.txt)"
    robots_token: str = "leadline"
    """The product token matched against robots.txt ``User-agent`` lines."""
    respect_robots: bool = True
    per_host_concurrency: int = 4
    per_host_interval_s: float = 0.0
    """Least time between the starts of two requests to one host (a robots Crawl-delay can raise it)."""
    max_crawl_delay_s: float = 10.0
    max_connections: int = 64
    attempts: int = 3
    """Tries per fetch, the first included; only transient failures are tried again."""
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0
    """A longer Retry-After is not waited for: the fetch fails with ``reason="rate_limited"``."""
    robots_ttl_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        positive = {
            "deadline_s": self.deadline_s,
            "connect_timeout_s": self.connect_timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "max_bytes": self.max_bytes,
            "per_host_concurrency": self.per_host_concurrency,
            "max_connections": self.max_connections,
            "attempts": self.attempts,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"FetchPolicy.{name} must be positive, got {value!r}")
        if self.max_redirects < 0 or self.per_host_interval_s < 0 or self.backoff_s < 0:
            raise ConfigError("FetchPolicy: max_redirects, per_host_interval_s and backoff_s must be >= 0")
        parse_fetch_allow(self.allow)  # a malformed entry fails here, when the policy is made


__all__ = ["DEFAULT_CONTENT_TYPES", "FetchPolicy"]
