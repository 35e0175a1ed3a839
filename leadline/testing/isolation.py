"""A switch that makes any real model load or real network request fail inside a test.

Unit tests of the loop run on fakes (:class:`~leadline.testing.ScriptedLLM`, :class:`FakeSearch`,
:class:`FakeFetcher`); if a change made one of them build a real engine or open a real connection
behind the test's back, the test would still pass, only slower, flakier, or by reaching the internet.
:func:`no_real_io` closes those doors for the duration of a ``with`` block:

- ``socket.connect`` / ``connect_ex`` to anything but loopback ports the test allowed (its own servers),
  and name lookups (DNS) of anything but loopback names, raise :class:`RealResourceUsed`;
- constructing the embedded llama.cpp engine raises :class:`RealResourceUsed`.

Each attempt is also recorded, and the block fails when it ends if any was made, so code that swallows
the error (``except Exception``) cannot hide it. Unix sockets and ``socketpair`` (asyncio's own wake-up
pipe) are untouched. The pytest fixture is in :mod:`leadline.testing.pytest_plugin`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class RealResourceUsed(AssertionError):
    """A test under :func:`no_real_io` tried to load a real model or open a real network connection."""


@dataclass
class Isolation:
    """What :func:`no_real_io` refused: one line per attempt, in order."""

    allow_ports: frozenset[int]
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refuse(self, what: str) -> RealResourceUsed:
        """Record an attempt and return the error to raise."""
        with self._lock:
            self.refused.append(what)
        return RealResourceUsed(f"{what} inside no_real_io()")


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").split("%", 1)[0].lower().rstrip(".")
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _check_address(guard: Isolation, address: Any) -> None:
    if isinstance(address, str | bytes):
        return  # a Unix socket path
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], str):
        host, port = address[0], address[1]
        if _is_loopback(host) and port in guard.allow_ports:
            return
        raise guard.refuse(f"network connection to {host}:{port}")
    raise guard.refuse(f"network connection to {address!r}")


@contextmanager
def no_real_io(*, allow_ports: Iterable[int] = ()) -> Iterator[Isolation]:
    """Inside the block, real network connections, model loads and the joining of a packaged model's
    parts (``resolve_model_file``) raise :class:`RealResourceUsed`.

    ``allow_ports`` lists loopback ports of servers the test itself started (a site server, a fake
    OpenAI server); connections to them (on ``127.0.0.1``, ``::1`` or ``localhost``) pass. The block
    raises on exit if anything was refused, even when the code under test swallowed the error.
    """
    guard = Isolation(allow_ports=frozenset(allow_ports))
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family != getattr(socket, "AF_UNIX", None):
            _check_address(guard, address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != getattr(socket, "AF_UNIX", None):
            _check_address(guard, address)
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else host
        if text is not None and not _is_loopback(str(text)) and not _is_literal(str(text)):
            raise guard.refuse(f"name lookup of {text!r}")
        return original_getaddrinfo(host, port, *args, **kwargs)

    from leadline.llm import llama_cpp_engine, models

    original_engine_init = llama_cpp_engine.LlamaCppEngine.__init__
    original_assemble = models.assemble

    def engine_init(self: Any, model_path: Any, *args: Any, **kwargs: Any) -> None:
        raise guard.refuse(f"loading the model {model_path}")

    def assemble(model: Any, *args: Any, **kwargs: Any) -> Any:
        raise guard.refuse(f"assembling the packaged model {getattr(model, 'name', model)}")

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    llama_cpp_engine.LlamaCppEngine.__init__ = engine_init  # type: ignore[method-assign]
    models.assemble = assemble
    failed = False
    try:
        yield guard
    except BaseException:
        failed = True
        raise
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo
        llama_cpp_engine.LlamaCppEngine.__init__ = original_engine_init  # type: ignore[method-assign]
        models.assemble = original_assemble
        if guard.refused and not failed:
            raise RealResourceUsed("; ".join(guard.refused) + " inside no_real_io()")


__all__ = ["Isolation", "RealResourceUsed", "no_real_io"]
