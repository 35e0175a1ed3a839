"""A real website on loopback: the PostgreSQL manual and a SearxNG-style search over it.

Web research must be testable, benchmarkable and demonstrable without the internet. This server hosts a
static site (a directory or a ``.tar.gz`` of HTML, such as the PostgreSQL 15 manual) and answers
``GET /search?q=...&format=json`` in SearxNG's JSON format from a small BM25 index over the pages (so
``leadline ask --search searxng --searxng-url http://127.0.0.1:PORT`` researches the manual end to end
through fetch and extraction). The hostile endpoints that only tests need (bombs, slow drips, redirects
to private addresses, ...) live in :mod:`leadline.testing.adversarial_site`, which extends
:class:`SiteApp` through :meth:`SiteApp.routes`.

:func:`serve_site` runs it with uvicorn in a background thread and returns a handle (tests, benchmarks);
:func:`run_site` blocks (the ``leadline serve-site`` command). Needs the ``site`` extra (starlette, uvicorn).
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import socket
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import html as lxml_html

from leadline.errors import ConfigError

_BOMB_SIZE = 100 * 1024 * 1024
_ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nAllow: /\n"


def load_site(source: Path) -> dict[str, bytes]:
    """Files of a site from a directory or a tarball, keyed by URL path without the leading slash.

    A single top folder holding every page (``html/`` in the PostgreSQL tarball) is dropped, so pages
    live at the site root.
    """
    files: dict[str, bytes] = {}
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                files[path.relative_to(source).as_posix()] = path.read_bytes()
    elif source.is_file() and source.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(source) as archive:
            for member in archive.getmembers():
                name = PurePosixPath(member.name)
                if not member.isfile() or name.is_absolute() or ".." in name.parts:
                    continue  # never follow links or leave the site root
                extracted = archive.extractfile(member)
                if extracted is not None:
                    files[name.as_posix()] = extracted.read()
    else:
        raise ConfigError(f"site source {source} is neither a directory nor a .tar.gz")
    pages = [name for name in files if name.endswith((".html", ".htm"))]
    tops = {name.split("/", 1)[0] for name in pages}
    if len(tops) == 1 and pages and all("/" in name for name in pages):
        prefix = f"{tops.pop()}/"
        files = {name.removeprefix(prefix): body for name, body in files.items()}
    if not files:
        raise ConfigError(f"site source {source} holds no files")
    return files


@dataclass(frozen=True)
class SitePage:
    """One page of the served site: its path, title and text."""

    path: str
    title: str
    text: str


def page_text(body: bytes) -> SitePage | None:
    """Title and visible text of a page, navigation removed: cheap, for the search index (not trafilatura)."""
    try:
        tree = lxml_html.document_fromstring(body)
    except (ValueError, lxml_html.etree.ParserError):
        return None
    for junk in tree.xpath(
        "//script|//style|//div[contains(@class,'navheader')]|//div[contains(@class,'navfooter')]"
    ):
        junk.drop_tree()
    title = " ".join((tree.findtext(".//title") or "").split())
    text = " ".join(tree.text_content().split())
    return SitePage(path="", title=title, text=text) if text else None


class SiteSearch:
    """BM25 (bm25s, English stemming) over the site's pages; answers like a SearxNG instance."""

    def __init__(self, files: dict[str, bytes]) -> None:
        import bm25s
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        pages: list[SitePage] = []
        for path, body in files.items():
            if not path.endswith((".html", ".htm")):
                continue
            page = page_text(body)
            if page is not None:
                pages.append(SitePage(path=path, title=page.title, text=page.text))
        self.pages = pages
        self._bm25 = bm25s.BM25()
        if pages:
            tokens = bm25s.tokenize(
                [f"{p.title} {p.title} {p.text}" for p in pages], stemmer=self._stemmer, show_progress=False
            )
            self._bm25.index(tokens, show_progress=False)

    def search(self, query: str, k: int = 10, offset: int = 0) -> list[tuple[SitePage, float]]:
        """BM25 search over the site's pages: (page, score) pairs, best first."""
        import bm25s

        if not self.pages:
            return []
        tokens = bm25s.tokenize([query], stemmer=self._stemmer, return_ids=False, show_progress=False)[0]
        vocab = self._bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        n = min(len(self.pages), k + offset)
        ids, scores = self._bm25.retrieve([tokens], k=n, show_progress=False)
        hits = [(self.pages[int(i)], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        return hits[offset : offset + k]


def snippet(text: str, query: str, width: int = 300) -> str:
    """The window of ``text`` with the most query words, as a search engine's result snippet."""
    words = {w for w in re.findall(r"\w{3,}", query.lower())}
    if not words or len(text) <= width:
        return text[:width]
    best, best_hits = 0, -1
    lowered = text.lower()
    for start in range(0, max(1, len(text) - width), width // 3):
        window = lowered[start : start + width]
        hits = sum(window.count(w) for w in words)
        if hits > best_hits:
            best, best_hits = start, hits
    return ("…" if best else "") + text[best : best + width].strip() + "…"


class SiteApp:
    """The ASGI app and its state (the pages and their search index)."""

    def __init__(self, files: dict[str, bytes], *, latency_s: float = 0.0) -> None:
        self.files = files
        self.latency_s = latency_s
        self.search_index = SiteSearch(files)

    def routes(self) -> list[Any]:
        """Starlette routes, the catch-all static route last; a subclass adds its own before these."""
        from starlette.routing import Route

        return [
            Route("/search", self.search),
            Route("/robots.txt", self.robots),
            Route("/", self.static),
            Route("/{path:path}", self.static),
        ]

    @cached_property
    def asgi(self) -> Any:
        """The Starlette app: robots.txt, the SearxNG-format search endpoint and the static pages."""
        from starlette.applications import Starlette

        app = Starlette(routes=self.routes())
        if self.latency_s <= 0:
            return app
        latency = self.latency_s

        async def delayed(scope: Any, receive: Any, send: Any) -> None:
            # Models a remote server's round trip, so local benchmarks see web-like waiting.
            if scope["type"] == "http":
                await asyncio.sleep(latency)
            await app(scope, receive, send)

        return delayed

    async def robots(self, request: Any) -> Any:
        """The site's robots.txt."""
        from starlette.responses import PlainTextResponse

        return PlainTextResponse(_ROBOTS_TXT)

    async def static(self, request: Any) -> Any:
        """A page of the site, or 404."""
        from starlette.responses import Response

        path = request.path_params.get("path", "") or "index.html"
        body = self.files.get(path)
        if body is None and not path.endswith("/"):
            body = self.files.get(f"{path}/index.html")
        if body is None:
            return Response("not found", status_code=404, media_type="text/plain")
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/xhtml+xml",):
            media = f"{media}; charset=utf-8" if b"charset" not in body[:2048].lower() else media
        return Response(body, media_type=media)

    async def search(self, request: Any) -> Any:
        """SearxNG-format JSON search results over the site."""
        from starlette.responses import JSONResponse, PlainTextResponse

        query = request.query_params.get("q", "").strip()
        if request.query_params.get("format", "html") != "json":
            return PlainTextResponse("only format=json is served here", status_code=403)
        try:
            page_number = max(1, int(request.query_params.get("pageno", "1")))
        except ValueError:
            page_number = 1
        per_page = 10
        hits = (
            self.search_index.search(query, k=per_page, offset=(page_number - 1) * per_page) if query else []
        )
        base = str(request.base_url).rstrip("/")
        results = []
        for position, (page, score) in enumerate(hits, start=1):
            url = f"{base}/{page.path}"
            results.append(
                {
                    "url": url,
                    "title": page.title,
                    "content": snippet(page.text, query),
                    "engine": "bm25",
                    "engines": ["bm25"],
                    "positions": [position],
                    "score": score,
                    "category": "general",
                    "template": "default.html",
                    "parsed_url": ["http", request.url.netloc, f"/{page.path}", "", "", ""],
                }
            )
        return JSONResponse(
            {
                "query": query,
                "number_of_results": len(results),
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )


class SiteServer:
    """A running site server (uvicorn in a daemon thread). ``url`` is its base URL; stop with ``stop()``."""

    def __init__(self, app: SiteApp, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.app = app
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app.asgi, log_level="critical", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> SiteServer:
        """Start serving in a background thread and wait until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ConfigError(f"site server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the server, join its thread and close its socket."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SiteServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_site(
    source: Path | dict[str, bytes], host: str = "127.0.0.1", port: int = 0, *, latency_s: float = 0.0
) -> SiteServer:
    """Start the site server in the background and return its running handle (``with`` stops it)."""
    files = source if isinstance(source, dict) else load_site(Path(source))
    return SiteServer(SiteApp(files, latency_s=latency_s), host=host, port=port).start()


def run_site(
    source: Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    latency_s: float = 0.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted (for ``leadline serve-site``)."""
    started = time.monotonic()
    server = serve_site(source, host=host, port=port, latency_s=latency_s)
    pages = len(server.app.search_index.pages)
    took = time.monotonic() - started
    echo(f"serving {pages} pages from {source} at {server.url} (started in {took:.1f} s)")
    echo(f"search: {server.url}/search?q=QUERY&format=json   (SearxNG JSON)")
    question = "How do I create a partitioned table?"
    echo(f'try: leadline ask --search searxng --searxng-url {server.url} "{question}"')
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


__all__ = ["SiteApp", "SiteSearch", "SiteServer", "load_site", "run_site", "serve_site", "snippet"]
