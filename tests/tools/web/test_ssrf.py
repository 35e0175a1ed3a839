"""The SSRF guard: private and special addresses are refused at URL, resolution and redirect time,
and only an explicit allow-list opens them (which is how these tests reach 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest

from leadline.errors import BlockedURLError, ConfigError, FetchError
from leadline.testing.ssrf_canary import Canary
from leadline.tools.fetcher import Fetcher
from leadline.tools.site_server import SiteServer
from leadline.tools.ssrf import AddressPolicy, StaticResolver, blocked_reason, check_url

from .conftest import fetch_with, loopback_policy, run


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "cgnat"),
        ("100.100.100.200", "cgnat"),
        ("168.63.129.16", "cloud-metadata"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("fd00:ec2::254", "unique-local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ],
)
def test_special_addresses_are_refused(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.org/x", "scheme"),
        ("gopher://example.org/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/html,<p>x</p>", "scheme"),
        ("not a url", "malformed_url"),
        ("http://", "malformed_url"),
        ("//example.org/no-scheme", "malformed_url"),
        ("http://127.0.0.1/", "ssrf:loopback"),
        ("http://[::1]:8080/", "ssrf:loopback"),
        ("http://169.254.169.254/latest/meta-data/", "ssrf:link-local"),
        ("https://10.0.0.5/admin", "ssrf:private"),
    ],
)
def test_check_url_refuses_before_any_network_use(url: str, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_url(url, AddressPolicy())
    assert caught.value.reason == reason


def test_allow_list_opens_only_what_it_names() -> None:
    policy = AddressPolicy(allow=("127.0.0.1", "10.1.0.0/16", "searxng.internal", ".corp.example"))
    check_url("http://127.0.0.1:8080/", policy)
    check_url("http://10.1.2.3/", policy)
    with pytest.raises(BlockedURLError):
        check_url("http://10.2.0.1/", policy)
    with pytest.raises(BlockedURLError):
        check_url("http://127.0.0.2/", policy)
    assert policy.host_allowed("searxng.internal") and policy.host_allowed("wiki.corp.example")
    assert not policy.host_allowed("evil-searxng.internal") and not policy.host_allowed("corp.example.evil")


def test_loopback_is_refused_without_the_allow_list(site: SiteServer) -> None:
    no_allow = loopback_policy(allow=())
    for url in (f"{site.url}/index.html", f"http://localhost:{site.port}/index.html"):
        with pytest.raises(BlockedURLError) as caught:
            run(fetch_with(no_allow, url))
        assert caught.value.reason == "ssrf:loopback"
    page = run(fetch_with(loopback_policy(), f"{site.url}/index.html"))
    assert page.status == 200 and b"PostgreSQL" in page.body


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("metadata", "ssrf:link-local"),
        ("private", "ssrf:private"),
        ("ipv6-loopback", "ssrf:loopback"),
    ],
)
def test_redirects_to_private_addresses_are_refused_even_with_loopback_allowed(
    site: SiteServer, target: str, reason: str
) -> None:
    with pytest.raises(BlockedURLError) as caught:
        run(fetch_with(loopback_policy(), f"{site.url}/_adversarial/redirect-private/{target}"))
    assert caught.value.reason == reason


def test_redirect_to_a_name_that_resolves_to_loopback_is_refused(site: SiteServer) -> None:
    # 127.0.0.1 is allowed as an address, but "localhost" is checked by what it resolves to: with the
    # allow-list holding only 127.0.0.2 nothing on loopback is reachable, by name or by redirect.
    resolver = StaticResolver({"docs.test": ("127.0.0.1",), "localhost": ("127.0.0.1",)})
    with pytest.raises(BlockedURLError) as caught:
        run(
            fetch_with(
                loopback_policy(allow=("127.0.0.2",)), f"http://docs.test:{site.port}/", resolver=resolver
            )
        )
    assert caught.value.reason == "ssrf:loopback"


class CountingResolver:
    def __init__(self, table: dict[str, tuple[str, ...]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(self.table[host])


def test_connection_goes_to_the_checked_address_without_a_second_lookup(site: SiteServer) -> None:
    # "docs.test" exists in no DNS: the fetch only works if the socket is opened to the address our
    # resolver returned and checked, and the Host header still names docs.test.
    resolver = CountingResolver({"docs.test": ("127.0.0.1",)})

    async def go() -> Any:
        async with Fetcher(loopback_policy(), resolver=resolver) as fetcher:
            first = await fetcher.fetch(f"http://docs.test:{site.port}/tutorial-createdb.html")
            second = await fetcher.fetch(f"http://docs.test:{site.port}/tutorial-join.html")
            return first, second

    first, second = run(go())
    assert b"Creating a Database" in first.body and b"Joins Between Tables" in second.body
    assert resolver.calls and set(resolver.calls) == {"docs.test"}
    # Keep-alive: robots.txt and two pages ride on few connections, one lookup per connection at most.
    assert len(resolver.calls) <= 3


def test_a_name_with_any_private_answer_is_refused() -> None:
    resolver = StaticResolver({"mixed.test": ("93.184.216.34", "10.0.0.7")})
    with pytest.raises(BlockedURLError) as caught:
        run(fetch_with(loopback_policy(allow=()), "http://mixed.test/", resolver=resolver))
    assert caught.value.reason == "ssrf:private"


def test_dns_failure_is_a_typed_error() -> None:
    with pytest.raises(FetchError) as caught:
        run(fetch_with(loopback_policy(), "http://nowhere.test/", resolver=StaticResolver({})))
    assert caught.value.reason == "dns" and caught.value.url == "http://nowhere.test/"


@asynccontextmanager
async def tls_server(cert_host: str) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    """A minimal HTTPS server on 127.0.0.1 with a certificate for ``cert_host`` from a throwaway CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_host).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    body = b"<html><head><title>TLS page</title></head><body><p>served over TLS</p></body></html>"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    try:
        yield server.sockets[0].getsockname()[1], client_context
    finally:
        server.close()


def test_tls_verifies_the_name_while_connecting_to_the_pinned_address() -> None:
    resolver = StaticResolver({"secure.test": ("127.0.0.1",)})
    policy = loopback_policy(respect_robots=False)

    async def go(cert_host: str, trust: bool) -> Any:
        async with (
            tls_server(cert_host) as (port, client_context),
            Fetcher(policy, resolver=resolver, verify=client_context if trust else True) as fetcher,
        ):
            return await fetcher.fetch(f"https://secure.test:{port}/")

    page = run(go("secure.test", trust=True))
    assert b"served over TLS" in page.body
    for cert_host, trust in (("other.test", True), ("secure.test", False)):
        with pytest.raises(FetchError) as caught:
            run(go(cert_host, trust))
        assert caught.value.reason == "tls"


def test_an_origin_entry_allows_that_origin_only() -> None:
    policy = AddressPolicy(allow=("http://127.0.0.1:8888", "http://[::1]:9999"))
    check_url("http://127.0.0.1:8888/search?q=x", policy)
    check_url("http://user@127.0.0.1:8888/page.html", policy)  # userinfo does not change the origin
    check_url("http://[::1]:9999/", policy)
    check_url("http://[0:0:0:0:0:0:0:1]:9999/", policy)  # the same address, spelled out
    for url in (
        "http://127.0.0.1:8889/",  # another port
        "http://127.0.0.1/",  # the default port is another port
        "https://127.0.0.1:8888/",  # another scheme
        "http://127.0.0.1:8888@127.0.0.1:22/",  # the origin as userinfo
        "http://[::ffff:127.0.0.1]:8888/",  # another spelling is another origin
        "http://[::1]:8888/",
        "http://127.0.0.2:8888/",
    ):
        with pytest.raises(BlockedURLError):
            check_url(url, policy)
    assert not policy.host_allowed("127.0.0.1") and not policy.address_allowed(ipaddress.ip_address("::1"))


def test_a_name_origin_does_not_admit_other_names_or_ports(site: SiteServer) -> None:
    # "localhost" rides on nothing: the origin names localhost:PORT, so 127.0.0.1:PORT (the same server)
    # and other names resolving to 127.0.0.1 are refused, at connection time
    resolver = StaticResolver({"localhost": ("127.0.0.1",), "other.test": ("127.0.0.1",)})
    policy = loopback_policy(allow=(f"http://localhost:{site.port}",))
    page = run(fetch_with(policy, f"http://localhost:{site.port}/index.html", resolver=resolver))
    assert page.status == 200
    for url in (
        f"{site.url}/index.html",
        f"http://other.test:{site.port}/index.html",
        f"https://localhost:{site.port}/index.html",
    ):
        with pytest.raises(BlockedURLError) as caught:
            run(fetch_with(policy, url, resolver=resolver))
        assert caught.value.reason == "ssrf:loopback"


def test_a_host_name_entry_admits_that_name_only() -> None:
    # issue 9 point 3: a name entry resolving to a private address does not open that address to others
    resolver = StaticResolver({"docs.test": ("127.0.0.1",), "other.test": ("127.0.0.1",)})
    policy = AddressPolicy(allow=("docs.test",))

    async def connect(host: str) -> list[str]:
        from leadline.tools.ssrf import GuardedNetworkBackend

        return await GuardedNetworkBackend(policy, resolver).resolve_checked(host, 80, "http")

    assert run(connect("docs.test")) == ["127.0.0.1"]
    for host in ("other.test", "127.0.0.1"):
        with pytest.raises(BlockedURLError):
            run(connect(host))


def test_redirect_from_the_allowed_origin_to_another_port_is_refused(site: SiteServer) -> None:
    # issue 9 point 2: every hop is checked again, against the origin, not just the host
    with Canary() as canary:
        policy = loopback_policy(allow=(site.url,))
        for target in (f"http://127.0.0.1:{canary.port}/", f"http://localhost:{canary.port}/"):
            with pytest.raises(BlockedURLError) as caught:
                run(fetch_with(policy, f"{site.url}/_adversarial/redirect-to?url={quote(target)}"))
            assert caught.value.reason == "ssrf:loopback"
        assert run(fetch_with(policy, f"{site.url}/_adversarial/redirect-chain/1")).status == 200
    assert canary.connections == []


@pytest.mark.parametrize(
    "entry",
    [
        "127.0.0.1:8080",
        "http://host/path",
        "ftp://x",
        "2130706433",
        "10.0.0.0/33",
        "a b",
        "localhost.",
        "*.x",
    ],
)
def test_a_malformed_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="LEADLINE_FETCH_ALLOW"):
        AddressPolicy(allow=(entry,))
