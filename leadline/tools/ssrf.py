"""The SSRF guard: which addresses a fetch may reach, and a transport that connects only to those.

Every URL the agent fetches may have been chosen by a hostile page, so a fetch must not reach the
machine's own services (loopback, private networks, cloud metadata). Checking the URL's host name is not
enough: a name can resolve to a private address, or resolve differently on a second lookup (DNS
rebinding). So the check happens where the socket is opened: :class:`GuardedNetworkBackend` resolves the
host once, checks *every* address, and connects to a checked address itself. The URL keeps its host
name, so the ``Host`` header, TLS SNI and certificate verification stay those of the name. Redirects open
new connections through the same backend, so every hop is checked again.

Self-hosted services and tests reach private addresses only through an explicit allow-list
(:class:`AddressPolicy`). Its narrowest entry is an origin (``http://127.0.0.1:8888``): the SearxNG
endpoint is allowed that way, so that a search service on loopback does not open every other port of
the machine to URLs its (untrusted) results carry. An origin names a scheme, which the socket-level
backend does not see: :class:`GuardedTransport` passes the scheme of the request in flight down to it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpcore
import httpx

from leadline.config import (
    DEFAULT_PORTS,
    AllowedHost,
    AllowedNetwork,
    AllowedOrigin,
    AllowEntry,
    parse_fetch_allow,
)
from leadline.errors import BlockedURLError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")

_REQUEST_SCHEME: ContextVar[str | None] = ContextVar("leadline_request_scheme", default=None)
"""The scheme of the request :class:`GuardedTransport` is sending; the network backend only sees host and
port, and an origin entry names the scheme too."""

# Named ranges, so a refusal says why. Anything not globally routable is refused as "reserved" too.
_NAMED_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),  # includes 169.254.169.254, the usual cloud metadata address
    ("100.64.0.0/10", "cgnat"),  # includes 100.100.100.200 (Alibaba metadata)
    ("192.0.0.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("168.63.129.16/32", "cloud-metadata"),  # Azure wire server: a public address that is not the internet
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local"),  # includes fd00:ec2::254 (AWS IPv6 metadata)
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), label) for cidr, label in _NAMED_RANGES
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why this address must not be fetched (``"loopback"``, ``"private"``, ...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return blocked_reason(inner)
    for network, label in _RANGES:
        if ip.version == network.version and ip in network:
            return label
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "reserved"
    return None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class AddressPolicy:
    """Which non-public destinations are allowed anyway.

    ``allow`` holds entries of :func:`leadline.config.parse_fetch_allow` (or their text): origins
    (``"http://127.0.0.1:8888"``: that scheme, host and port only, the host spelled as written there),
    bare host names (``"searxng.internal"``, every port; a leading dot allows subdomains too), and bare
    addresses or CIDR networks (``"10.1.0.0/16"``: every port, and every name resolving into them). A
    host-name entry admits that name only, not other names resolving to the same address. Empty by
    default: only public addresses. A malformed entry raises :class:`~leadline.errors.ConfigError`.
    """

    allow: tuple[str | AllowEntry, ...] = ()
    entries: tuple[AllowEntry, ...] = field(init=False, repr=False, compare=False)
    """``allow`` parsed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", parse_fetch_allow(self.allow))

    def host_allowed(self, host: str) -> bool:
        """Is this host *name* a bare host-name entry (then any address it resolves to, on any port)?"""
        if _parse_ip(host) is not None:
            return False
        host = host.lower().rstrip(".")
        for entry in self.entries:
            if isinstance(entry, AllowedHost) and (
                host == entry.name or (entry.subdomains and host.endswith(f".{entry.name}"))
            ):
                return True
        return False

    def address_allowed(self, ip: IPAddress) -> bool:
        """Is this address inside a bare address or network entry (then on any port, by any name)?"""
        return any(
            isinstance(entry, AllowedNetwork) and ip.version == entry.network.version and ip in entry.network
            for entry in self.entries
        )

    def origin_allowed(self, scheme: str | None, host: str, port: int | None) -> bool:
        """Is ``scheme://host:port`` exactly an origin entry? An unknown scheme never matches."""
        if scheme is None:
            return False
        scheme = scheme.lower()
        port = port if port is not None else DEFAULT_PORTS.get(scheme)
        literal = _parse_ip(host)
        canonical = str(literal) if literal is not None else host.lower()
        return any(
            isinstance(entry, AllowedOrigin)
            and (entry.scheme, entry.host, entry.port) == (scheme, canonical, port)
            for entry in self.entries
        )

    def check_address(
        self, host: str, ip: IPAddress, *, port: int | None = None, scheme: str | None = None, url: str = ""
    ) -> None:
        """Raise :class:`BlockedURLError` unless ``ip`` is public or allow-listed for this host and port.

        ``host`` is the URL's host as written (a name or a literal), ``ip`` one address it resolved to.
        """
        reason = blocked_reason(ip)
        if (
            reason is None
            or self.address_allowed(ip)
            or self.host_allowed(host)
            or self.origin_allowed(scheme, host, port)
        ):
            return
        where = f"{host}:{port}" if port is not None else host
        raise BlockedURLError(
            f"refused to connect to {where} ({ip}): {reason} address", url=url, reason=f"ssrf:{reason}"
        )


def check_url(url: str | httpx.URL, policy: AddressPolicy) -> httpx.URL:
    """Parse and check a URL before any network use: scheme, host, and a literal IP host's address.

    Host names are checked later, at connection time, against what they resolve to.
    """
    text = str(url)
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(f"malformed URL {text[:200]!r}: {exc}", url=text, reason="malformed_url") from exc
    if not parsed.scheme:
        raise FetchError(f"not an absolute URL: {text[:200]!r}", url=text, reason="malformed_url")
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise BlockedURLError(
            f"unsupported scheme {parsed.scheme!r} in {text[:200]!r}", url=text, reason="scheme"
        )
    host = parsed.host
    if not host:
        raise FetchError(f"URL has no host: {text[:200]!r}", url=text, reason="malformed_url")
    literal = _parse_ip(host)
    if literal is not None:
        policy.check_address(host, literal, port=parsed.port, scheme=parsed.scheme, url=text)
    return parsed


class Resolver(Protocol):
    """Turns a host name into addresses. Injected so tests can map names without a DNS server."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to."""


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``), run off the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve with the system resolver; a FetchError when the name does not resolve."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {host!r}: {exc}", url=host, reason="dns") from exc
        return _unique(str(info[4][0]) for info in infos)


@dataclass(frozen=True)
class StaticResolver:
    """A fixed name → addresses table, for tests and for pinning a self-hosted service."""

    table: dict[str, tuple[str, ...]]

    async def resolve(self, host: str, port: int) -> list[str]:
        """The table's addresses for ``host`` (IP literals resolve to themselves)."""
        if _parse_ip(host) is not None:
            return [host.strip("[]")]
        addresses = self.table.get(host.lower())
        if not addresses:
            raise FetchError(f"cannot resolve {host!r}: unknown name", url=host, reason="dns")
        return list(addresses)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves once, checks every address, and connects to it.

    Refusing when *any* address is blocked (not just skipping it) matters: a name that mixes public and
    private answers is an attack, not a misconfiguration.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver or SystemResolver()
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve_checked(self, host: str, port: int, scheme: str | None = None) -> list[str]:
        """The addresses to connect to for ``host``, every one checked; raises before any connection.

        ``scheme`` defaults to that of the request in flight (set by :class:`GuardedTransport`); without
        one no origin entry applies.
        """
        scheme = scheme if scheme is not None else _REQUEST_SCHEME.get()
        literal = _parse_ip(host)
        addresses = [str(literal)] if literal is not None else await self._resolver.resolve(host, port)
        if not addresses:
            raise FetchError(f"cannot resolve {host!r}: no addresses", url=host, reason="dns")
        for address in addresses:
            ip = _parse_ip(address)
            if ip is None:
                raise BlockedURLError(f"resolver gave a non-address {address!r}", url=host, reason="ssrf")
            self._policy.check_address(host, ip, port=port, scheme=scheme, url=host)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a checked address of ``host`` (pinned: no second lookup)."""
        addresses = await self.resolve_checked(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: the fetcher never uses Unix sockets."""
        raise BlockedURLError("unix sockets are never fetched", url=path, reason="ssrf:unix")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the wrapped backend."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool rebuilt on :class:`GuardedNetworkBackend`.

    httpx does not expose the network backend, so the pool is replaced after construction; the check
    below (and ``tests/tools/web/test_ssrf.py``) fails loudly if a future httpx renames it.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        limits: httpx.Limits | None = None,
        verify: Any = True,
        retries: int = 0,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits, trust_env=False, retries=retries)
        old_pool = getattr(self, "_pool", None)
        if not isinstance(old_pool, httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx internals changed: cannot install the SSRF guard")
        self.backend = GuardedNetworkBackend(policy, resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=old_pool._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=retries,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, the guard knowing its scheme (origin entries name one)."""
        # The connection (if a new one is needed) is opened inside this call, in this task: the backend
        # reads the scheme from the context variable to match origin entries.
        token = _REQUEST_SCHEME.set(request.url.scheme)
        try:
            return await super().handle_async_request(request)
        finally:
            _REQUEST_SCHEME.reset(token)


def guarded_client(
    policy: AddressPolicy,
    *,
    resolver: Resolver | None = None,
    timeout: httpx.Timeout | None = None,
    headers: dict[str, str] | None = None,
    limits: httpx.Limits | None = None,
    verify: Any = True,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection goes through the guard.

    Redirects are not followed (the fetcher follows them itself, checking each hop), and environment
    proxies are ignored: a proxy would connect on our behalf where the guard cannot see.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver, limits=limits, verify=verify),
        timeout=timeout or httpx.Timeout(10.0, connect=5.0),
        headers=headers,
        follow_redirects=False,
        trust_env=False,
    )


__all__ = [
    "ALLOWED_SCHEMES",
    "AddressPolicy",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "blocked_reason",
    "check_url",
    "guarded_client",
]
