"""Turn a fetched body into Markdown text plus metadata (title, author, date, site).

HTML goes through trafilatura twice at most: precision first (boilerplate, navigation and comments
out), and a recall pass only when precision kept too little (short pages, odd layouts). Bytes are decoded
by the declared charset, then the page's own ``<meta charset>``, then detection, so non-UTF-8 pages read
right. Hidden elements are removed before extraction and chat-role markers after it
(:mod:`leadline.tools.untrusted`). Inputs and outputs are capped, so one huge page cannot stall a run.
PDF text needs the ``pdf`` extra (pypdf).
"""

from __future__ import annotations

import copy
import importlib
import io
import re
from dataclasses import dataclass

import trafilatura
from lxml import etree
from lxml import html as lxml_html

from leadline.errors import FetchError
from leadline.tools.untrusted import clean_untrusted_text, strip_hidden_elements

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class ExtractionPolicy:
    """Limits of extraction: input size, output size and how much metadata to keep."""

    max_input_chars: int = 3_000_000
    """HTML beyond this is cut before parsing (lxml recovers the cut document)."""
    max_chars: int = 60_000
    """Extracted text beyond this is cut at a paragraph boundary (``truncated`` is then set)."""
    min_chars: int = 250
    """Precision output shorter than this triggers the recall pass."""
    include_tables: bool = True
    include_links: bool = False
    max_pdf_pages: int = 50


@dataclass(frozen=True, kw_only=True)
class Extracted:
    """A page's readable text and metadata, as extraction found them."""

    text: str
    title: str = ""
    author: str = ""
    date: str = ""
    site: str = ""
    language: str = ""
    mode: str = "precision"
    """Which pass produced ``text``: precision, recall, plain or pdf."""
    truncated: bool = False


def decode_html(body: bytes, charset: str | None = None) -> str:
    """Decode a page: declared charset, then the page's own declaration, then detection."""
    candidates: list[str] = []
    if charset:
        candidates.append(charset)
    head = body[:4096]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        match = pattern.search(head)
        if match:
            candidates.append(match.group(1).decode("ascii", errors="ignore"))
    for name in candidates:
        try:
            return body.decode(_normalize_charset(name))
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes  # a trafilatura dependency

        best = from_bytes(body[:200_000]).best()
        if best is not None and best.encoding:
            return body.decode(best.encoding, errors="replace")
    except ImportError:  # pragma: no cover - trafilatura always brings it
        pass
    return body.decode("cp1252", errors="replace")


def _normalize_charset(name: str) -> str:
    name = name.strip().lower()
    # Browsers read latin-1 and ascii labels as windows-1252 (WHATWG Encoding); so do we.
    return "cp1252" if name in ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii") else name


_FENCE = re.compile(r"(^```.*?^```[ \t]*$)", re.MULTILINE | re.DOTALL)


def _tidy(markdown: str) -> str:
    """Unwrap source-indented soft line breaks outside code blocks (``with a\\n     very large``) and
    drop bracket and underscore escapes: they cost tokens and split phrases; code keeps its layout."""
    parts = _FENCE.split(markdown)
    for i in range(0, len(parts), 2):
        text = re.sub(r"[ \t]{2,}", " ", re.sub(r"[ \t]*\n[ \t]+(?=\S)", " ", parts[i]))
        # Markdown escapes of brackets and underscores are noise to a model reading technical text.
        parts[i] = re.sub(r"\\([\[\]_])", r"\1", text)
    return "".join(parts)


def _cap(text: str, max_chars: int) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    cut = text.rfind("\n\n", 0, max_chars)
    return text[: cut if cut > max_chars // 2 else max_chars].rstrip(), True


def _parse(html: str) -> lxml_html.HtmlElement | None:
    html = _XML_DECLARATION.sub("", html, count=1)  # lxml refuses str input that declares an encoding
    if not html.strip():
        return None
    try:
        return lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None


def extract_html(
    body: bytes | str,
    *,
    url: str | None = None,
    charset: str | None = None,
    policy: ExtractionPolicy | None = None,
) -> Extracted | None:
    """Markdown and metadata from an HTML page, or None if it holds no readable text (a script shell)."""
    policy = policy or ExtractionPolicy()
    html = body if isinstance(body, str) else decode_html(body, charset)
    tree = _parse(html[: policy.max_input_chars])
    if tree is None:
        return None
    strip_hidden_elements(tree)
    metadata = trafilatura.extract_metadata(copy.deepcopy(tree), default_url=url)
    options = {
        "url": url,
        "output_format": "markdown",
        "include_tables": policy.include_tables,
        "include_links": policy.include_links,
        "include_comments": False,
        "include_images": False,
        "deduplicate": False,
    }
    text = trafilatura.extract(copy.deepcopy(tree), favor_precision=True, **options) or ""  # type: ignore[arg-type]
    mode = "precision"
    if len(text) < policy.min_chars:
        recall = trafilatura.extract(copy.deepcopy(tree), favor_recall=True, **options) or ""  # type: ignore[arg-type]
        if len(recall) > len(text):
            text, mode = recall, "recall"
    text = clean_untrusted_text(_tidy(text))
    if not text:
        return None
    text, truncated = _cap(text, policy.max_chars)
    title = clean_untrusted_text(metadata.title or "") if metadata is not None else ""
    return Extracted(
        text=text,
        title=title,
        author=(metadata.author or "") if metadata is not None else "",
        date=(metadata.date or "") if metadata is not None else "",
        site=(metadata.sitename or metadata.hostname or "") if metadata is not None else "",
        language=(metadata.language or "") if metadata is not None else "",
        mode=mode,
        truncated=truncated,
    )


def extract_plain(
    body: bytes, *, charset: str | None = None, policy: ExtractionPolicy | None = None
) -> Extracted:
    """Plain text (not HTML) as an Extracted page: decoded, cleaned and cut to the policy."""
    policy = policy or ExtractionPolicy()
    text = clean_untrusted_text(decode_html(body, charset))
    text, truncated = _cap(text, policy.max_chars)
    title = next((line.strip("# ").strip() for line in text.splitlines() if line.strip()), "")[:200]
    return Extracted(text=text, title=title, mode="plain", truncated=truncated)


def extract_pdf(body: bytes, *, policy: ExtractionPolicy | None = None) -> Extracted:
    """Text of a PDF's first pages, with pypdf (the ``pdf`` extra)."""
    policy = policy or ExtractionPolicy()
    try:
        pypdf = importlib.import_module("pypdf")
    except ImportError as exc:
        raise FetchError(
            "reading PDFs needs the 'pdf' extra: pip install 'leadline[pdf]'", reason="pdf"
        ) from exc
    try:
        reader = pypdf.PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages[: policy.max_pdf_pages]]
        info = reader.metadata
    except Exception as exc:  # pypdf raises many types for broken files
        raise FetchError(f"cannot read PDF: {exc}", reason="pdf") from exc
    text, truncated = _cap(clean_untrusted_text("\n\n".join(pages)), policy.max_chars)
    return Extracted(
        text=text,
        title=clean_untrusted_text(str(getattr(info, "title", "") or "")) if info else "",
        author=str(getattr(info, "author", "") or "") if info else "",
        mode="pdf",
        truncated=truncated,
    )


def extract_page(
    body: bytes, *, content_type: str, url: str | None = None, policy: ExtractionPolicy | None = None
) -> Extracted | None:
    """Dispatch on the content type (``text/html; charset=...`` as served)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    charset = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    if mime == "application/pdf":
        return extract_pdf(body, policy=policy)
    if mime in ("text/plain", "text/markdown"):
        return extract_plain(body, charset=charset, policy=policy)
    return extract_html(body, url=url, charset=charset, policy=policy)


__all__ = [
    "Extracted",
    "ExtractionPolicy",
    "decode_html",
    "extract_html",
    "extract_page",
    "extract_pdf",
    "extract_plain",
]
