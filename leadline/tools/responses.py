"""What an HTTP response or failure means to the fetcher: status errors, retry-after, transient or not.

Kept apart from :mod:`leadline.tools.fetcher` so the mapping from httpx's exceptions and status codes to
:class:`~leadline.errors.FetchError` reasons can be read (and tested) on its own.
"""

from __future__ import annotations

import ssl
import time
from email.utils import parsedate_to_datetime

import httpx

from leadline.errors import BlockedURLError, FetchError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_REASONS = frozenset({"connect", "timeout", "network", "truncated"})


class HTTPStatusFetchError(FetchError):
    """The server answered with an error status; ``retry_after`` is its Retry-After in seconds, if any."""

    def __init__(self, message: str, *, url: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, url=url, reason=f"http_{status}")
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) is a TLS certificate or handshake failure."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def map_http_error(exc: httpx.HTTPError, url: str) -> FetchError:
    """A FetchError with a reason (timeout, connect, tls, ...) for an httpx error."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        reason = "tls" if is_tls_failure(exc) else "connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        # httpx parses a redirect's Location itself; a bad one is the server's URL, not a dropped connection
        reason = "malformed_url" if "location header" in detail.lower() else "truncated"
    elif isinstance(exc, httpx.NetworkError):
        reason = "tls" if is_tls_failure(exc) else "network"
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        reason = "malformed_url"
    elif isinstance(exc, httpx.DecodingError):
        reason = "decoding"
    else:
        reason = "error"
    error = FetchError(f"fetching {url} failed ({reason}): {detail}", url=url, reason=reason)
    error.__cause__ = exc
    return error


def is_transient(exc: BaseException) -> bool:
    """Whether a fetch error is worth retrying (a retryable status, a timeout, a dropped connection)."""
    if isinstance(exc, HTTPStatusFetchError):
        return exc.status in RETRY_STATUSES
    return (
        isinstance(exc, FetchError)
        and not isinstance(exc, BlockedURLError)
        and (exc.reason in TRANSIENT_REASONS)
    )


__all__ = [
    "RETRY_STATUSES",
    "TRANSIENT_REASONS",
    "HTTPStatusFetchError",
    "is_tls_failure",
    "is_transient",
    "map_http_error",
    "retry_after_seconds",
]
