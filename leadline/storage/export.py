"""A run's record as Markdown, JSON or a self-contained HTML page (``leadline runs export``).

Everything in a run can come from the web (page titles, snippets, a model's answer quoting a page), so
the HTML is escaped throughout, links are kept only for http(s) URLs, and a Content-Security-Policy
forbids loading anything at all: no remote image, script or font can be pulled when the file is opened.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from leadline.errors import ConfigError
from leadline.storage.store import SqlRunStore

ExportFormat = Literal["md", "json", "html"]
FORMATS: tuple[ExportFormat, ...] = ("md", "json", "html")


def run_document(store: SqlRunStore, run_id: str) -> dict[str, Any]:
    """Everything recorded about a run, as JSON-ready data: totals, steps, every ledger entry, LLM call
    and search (query, backend, results), and the sources read."""
    run = store.get_run(run_id)
    return {
        "run": asdict(run),
        "ledger": store.ledger_totals(run_id).to_dict(),
        "steps": [asdict(s) for s in store.list_steps(run_id)],
        "ledger_entries": [asdict(e) for e in store.ledger_entries(run_id)],
        "llm_calls": [asdict(c) for c in store.llm_calls(run_id)],
        "searches": [asdict(c) for c in store.search_calls(run_id)],
        "sources": [asdict(s) for s in store.list_sources(run_id)],
    }


def export_run(store: SqlRunStore, run_id: str, fmt: str) -> str:
    """The run as Markdown, JSON or HTML; a ConfigError for another format."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    doc = run_document(store, run_id)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    if fmt == "md":
        return to_markdown(doc)
    return to_html(doc)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else ""


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: dict[str, Any]) -> str:
    """A run document (:func:`run_document`) as Markdown."""
    run, ledger = doc["run"], doc["ledger"]
    lines = [
        f"# Run {run['run_id']}",
        "",
        f"- **Question:** {run['question']}",
        f"- **Status:** {run['status']}",
        f"- **Mode:** {run['mode']}",
        f"- **Model:** {run['model']}",
        f"- **Started:** {_when(run['created_at'])}",
        f"- **Finished:** {_when(run['finished_at'])}",
        "",
        "## Answer",
        "",
        run["answer"] or "_(no answer)_",
        "",
    ]
    if run["error"]:
        lines += ["## Error", "", run["error"], ""]
    if run["citations"]:
        lines += ["## Citations", ""]
        for number, c in enumerate(run["citations"], start=1):
            title = c.get("title") or c.get("doc_id") or "source"
            url = c.get("url") or ""
            lines.append(f"{number}. [{title}]({url})" if url else f"{number}. {title}")
        lines.append("")
    if run["report"]:
        lines += ["## Report", "", run["report"], ""]
    lines += ["## Spend", "", "| what | amount |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in ledger.items()]
    lines += ["", "## Steps", "", "| # | node | kind | key | prompt | completion | searches | fetches | s |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, s in enumerate(doc["steps"], start=1):
        lines.append(
            f"| {i} | {_cell(s['node'])} | {s['kind']} | `{_cell(s['key'])}` | {s['prompt_tokens']} | "
            f"{s['completion_tokens']} | {s['searches']} | {s['fetches']} | {s['seconds']:.2f} |"
        )
    if doc["searches"]:
        lines += [
            "",
            "## Searches",
            "",
            "| # | query | backend | results | s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, c in enumerate(doc["searches"], start=1):
            lines.append(
                f"| {i} | {_cell(c['query'])} | {_cell(c['backend'])} | {c['n_results']} "
                f"| {c['latency_s']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def _safe_href(url: str) -> str | None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
)


_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def to_html(doc: dict[str, Any]) -> str:
    """A run document as a self-contained HTML page that loads nothing and escapes everything."""
    e = html.escape
    run, ledger = doc["run"], doc["ledger"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may load from anywhere: the page is self-contained and its content is untrusted.
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>leadline run {e(run['run_id'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(run['question'])}</h1>",
        "<dl>",
        f"<dt>Run</dt><dd><code>{e(run['run_id'])}</code></dd>",
        f"<dt>Status</dt><dd>{e(run['status'])}</dd>",
        f"<dt>Model</dt><dd>{e(run['model'])}</dd>",
        f"<dt>Started</dt><dd>{e(_when(run['created_at']))}</dd>",
        f"<dt>Finished</dt><dd>{e(_when(run['finished_at']))}</dd>",
        "</dl>",
        "<h2>Answer</h2>",
        f"<pre>{e(run['answer'] or '(no answer)')}</pre>",
    ]
    if run["error"]:
        parts += ["<h2>Error</h2>", f"<pre>{e(run['error'])}</pre>"]
    if run["citations"]:
        parts.append("<h2>Citations</h2><ol>")
        for c in run["citations"]:
            title = e(str(c.get("title") or c.get("doc_id") or "source"))
            href = _safe_href(str(c.get("url") or ""))
            if href:
                parts.append(f'<li><a href="{e(href)}" rel="noopener noreferrer nofollow">{title}</a></li>')
            else:
                parts.append(f"<li>{title}</li>")
        parts.append("</ol>")
    if run["report"]:
        parts += ["<h2>Report</h2>", f"<pre>{e(run['report'])}</pre>"]
    parts.append("<h2>Spend</h2><table>")
    parts += [f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in ledger.items()]
    parts.append("</table><h2>Steps</h2><table>")
    parts.append(
        "<tr><th>#</th><th>node</th><th>kind</th><th>key</th><th>prompt</th><th>completion</th>"
        "<th>searches</th><th>fetches</th><th>s</th></tr>"
    )
    for i, s in enumerate(doc["steps"], start=1):
        cells = [
            i,
            s["node"],
            s["kind"],
            s["key"],
            s["prompt_tokens"],
            s["completion_tokens"],
            s["searches"],
            s["fetches"],
            f"{s['seconds']:.2f}",
        ]
        parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    if doc["searches"]:
        parts.append("<h2>Searches</h2><table>")
        parts.append("<tr><th>#</th><th>query</th><th>backend</th><th>results</th><th>s</th></tr>")
        for i, c in enumerate(doc["searches"], start=1):
            cells = [i, c["query"], c["backend"], c["n_results"], f"{c['latency_s']:.2f}"]
            parts.append("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["FORMATS", "ExportFormat", "export_run", "run_document", "to_html", "to_markdown"]
