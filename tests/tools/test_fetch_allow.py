"""The fetch allow-list as a setting: parsed when settings are made, a malformed entry a one-line error."""

from __future__ import annotations

import ipaddress

import pytest
from typer.testing import CliRunner

from leadline.cli import app
from leadline.config import (
    AllowedHost,
    AllowedNetwork,
    AllowedOrigin,
    Settings,
    origin_of,
    parse_allow_entry,
    parse_fetch_allow,
)
from leadline.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("http://127.0.0.1:8888", AllowedOrigin("http", "127.0.0.1", 8888)),
        ("HTTP://SearxNG.lan:8080/", AllowedOrigin("http", "searxng.lan", 8080)),
        ("https://search.lan", AllowedOrigin("https", "search.lan", 443)),
        ("http://[::1]:9", AllowedOrigin("http", "::1", 9)),
        ("http://[0:0::1]:9", AllowedOrigin("http", "::1", 9)),
        ("10.0.0.0/8", AllowedNetwork(ipaddress.ip_network("10.0.0.0/8"))),
        ("10.1.2.3", AllowedNetwork(ipaddress.ip_network("10.1.2.3/32"))),
        ("[::1]", AllowedNetwork(ipaddress.ip_network("::1/128"))),
        ("fd00::/8", AllowedNetwork(ipaddress.ip_network("fd00::/8"))),
        ("wiki.corp.example", AllowedHost("wiki.corp.example")),
        (".corp.example", AllowedHost("corp.example", subdomains=True)),
        ("localhost", AllowedHost("localhost")),
    ],
)
def test_entries_parse_to_their_kind(text: str, entry: object) -> None:
    assert parse_allow_entry(text) == entry
    assert parse_allow_entry(str(entry)) == entry  # the text form reads back the same


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("127.0.0.1:8080", "a port needs an origin"),
        ("localhost:8080", "a port needs an origin"),
        ("http://127.0.0.1:8080/search", "no path"),
        ("http://u:p@127.0.0.1:8080", "no user name"),
        ("ftp://files.lan", "http or https"),
        ("http://:8080", "no host"),
        ("http://h:70000", "out of range"),
        ("2130706433", "dotted"),
        ("0x7f.1", "dotted"),
        ("10.0.0.0/33", "bad network"),
        ("10.0.0.1/8/2", "bad network"),
        ("search lan", "not a host"),
        ("localhost.", "trailing dot"),
        ("bücher.lan", "xn--"),
        ("*.corp.example", "not a host name"),
    ],
)
def test_a_malformed_entry_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_allow_entry(text)
    message = caught.value.message
    assert why in message and repr(text) in message and "\n" not in message


def test_the_list_form_is_a_comma_list_and_a_malformed_entry_fails_the_settings() -> None:
    assert parse_fetch_allow(" 10.0.0.0/8, ,wiki.lan,") == (
        AllowedNetwork(ipaddress.ip_network("10.0.0.0/8")),
        AllowedHost("wiki.lan"),
    )
    assert parse_fetch_allow(None) == ()
    with pytest.raises(ConfigError, match="LEADLINE_FETCH_ALLOW"):
        Settings(fetch_allow="10.0.0.0/8, 127.0.0.1:8888")
    assert Settings(fetch_allow="10.0.0.0/8, http://127.0.0.1:8888").fetch_allow


def test_origin_of_a_service_url() -> None:
    assert origin_of("http://127.0.0.1:8888/searx?x=1") == AllowedOrigin("http", "127.0.0.1", 8888)
    assert origin_of("https://user:pw@Search.Lan/") == AllowedOrigin("https", "search.lan", 443)
    with pytest.raises(ConfigError, match="SearxNG URL"):
        origin_of("127.0.0.1:8888", what="SearxNG URL")


@pytest.mark.parametrize(
    "command",
    [
        ["ask", "Who wrote Hamlet?"],
        ["ask", "Who wrote Hamlet?", "--search", "searxng", "--searxng-url", "http://127.0.0.1:9"],
        ["models"],
        ["runs", "list"],
        ["db", "current"],
    ],
)
def test_a_malformed_entry_in_the_environment_is_a_one_line_error_at_start_up(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADLINE_FETCH_ALLOW", "10.0.0.0/8,127.0.0.1:8888")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "LEADLINE_FETCH_ALLOW entry '127.0.0.1:8888' is malformed" in lines[0]
    assert result.stdout == ""
