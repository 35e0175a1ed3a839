"""SSRF test helpers: a canary that records every connection, and a hostile SearxNG-format endpoint.

Search results are untrusted input. To prove that a search service on a private host does not open the
rest of that host to page fetches, a test runs :class:`HostileSearxngApp` (a SearxNG-format search whose
results point wherever the test says: at the canary in every spelling, through redirects from its own
origin, and at its own pages) and a :class:`Canary` on another loopback port, listening on both
``127.0.0.1`` and ``::1``. The canary records a connection the moment it is accepted, before a byte is
read, so "no request at all" (not even for robots.txt) is checked at the socket, not in an HTTP log.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any

from leadline.errors import ConfigError
from leadline.tools.site_server import SiteApp

_CANARY_PAGE = (
    b"<html><head><title>Canary</title></head><body><article><p>"
    + b"The canary page: a fetch reached a service it must never reach. " * 8
    + b"</p></article></body></html>"
)


class Canary:
    """A tiny HTTP server on one port of ``127.0.0.1`` and ``::1`` that records every connection.

    ``connections`` holds ``(peer address, first request bytes)`` per accepted connection; it answers
    every request with a small HTML page, so a test's positive control can see a fetch succeed. Use as a
    context manager; only loopback addresses are bound.
    """

    def __init__(self, *, ipv6: bool = True) -> None:
        self.connections: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._sockets = self._bind(ipv6)
        self.port: int = self._sockets[0].getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ssrf-canary", daemon=True)

    @staticmethod
    def _bind(ipv6: bool) -> list[socket.socket]:
        for _ in range(50):  # the same port free on both families: retry with another ephemeral port
            v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            v4.bind(("127.0.0.1", 0))
            if not ipv6:
                return [v4]
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                v6.bind(("::1", v4.getsockname()[1]))
            except OSError:
                v4.close()
                v6.close()
                continue
            return [v4, v6]
        raise ConfigError("canary: no port free on both 127.0.0.1 and ::1")

    @property
    def hits(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self.connections)

    def reset(self) -> None:
        """Forget the connections recorded so far."""
        with self._lock:
            self.connections.clear()

    def start(self) -> Canary:
        """Listen and serve in a daemon thread."""
        for sock in self._sockets:
            sock.listen(64)
            sock.setblocking(False)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening sockets."""
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> Canary:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    listener: Any = key.fileobj
                    try:
                        conn, peer = listener.accept()
                    except (BlockingIOError, OSError):
                        continue
                    with self._lock:
                        self.connections.append((str(peer[0]), b""))
                        index = len(self.connections) - 1
                    threading.Thread(target=self._answer, args=(conn, index), daemon=True).start()

    def _answer(self, conn: socket.socket, index: int) -> None:
        with conn:
            conn.setblocking(True)
            conn.settimeout(2.0)
            try:
                request = conn.recv(4096)
                with self._lock:
                    if index < len(self.connections):
                        self.connections[index] = (self.connections[index][0], request)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(_CANARY_PAGE) + _CANARY_PAGE
                )
            except OSError:
                pass


class HostileSearxngApp(SiteApp):
    """A SearxNG-format search whose results are chosen by the test, with a redirect on its own origin.

    ``results`` are URL templates: ``{origin}`` becomes the origin the client asked (``http://host:port``
    as in its ``Host`` header); every query answers the same rows. ``GET /redirect?to=URL`` answers 302 to
    ``URL``. With ``robots_redirect`` set, ``/robots.txt`` redirects there. The site's own pages are
    served as usual, so results on the endpoint's own origin can be read.
    """

    def __init__(
        self, files: dict[str, bytes], results: list[str], *, robots_redirect: str | None = None
    ) -> None:
        super().__init__(files)
        self.result_templates = list(results)
        self.robots_redirect = robots_redirect

    def routes(self) -> list[Any]:
        """``/redirect``, then the site's own routes."""
        from starlette.routing import Route

        return [Route("/redirect", self.redirect), *super().routes()]

    async def redirect(self, request: Any) -> Any:
        """302 to the ``to`` query parameter."""
        from starlette.responses import PlainTextResponse, RedirectResponse

        target = request.query_params.get("to")
        if not target:
            return PlainTextResponse("missing ?to=", status_code=400)
        return RedirectResponse(target, status_code=302)

    async def robots(self, request: Any) -> Any:
        """Allow-all robots.txt, or a redirect to ``robots_redirect``."""
        from starlette.responses import RedirectResponse

        if self.robots_redirect:
            return RedirectResponse(self.robots_redirect, status_code=302)
        return await super().robots(request)

    async def search(self, request: Any) -> Any:
        """The scripted rows, in SearxNG's JSON shape (page 1 only)."""
        from starlette.responses import JSONResponse

        origin = str(request.base_url).rstrip("/")
        rows = []
        if request.query_params.get("pageno", "1") == "1":
            for position, template in enumerate(self.result_templates, start=1):
                rows.append(
                    {
                        "url": template.replace("{origin}", origin),
                        "title": f"result {position}",
                        "content": "a search result chosen by a hostile search service",
                        "engine": "hostile",
                        "engines": ["hostile"],
                        "positions": [position],
                        "score": 1.0 / position,
                        "category": "general",
                    }
                )
        return JSONResponse(
            {
                "query": request.query_params.get("q", ""),
                "number_of_results": len(rows),
                "results": rows,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )


__all__ = ["Canary", "HostileSearxngApp"]
