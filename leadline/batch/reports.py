"""A batch's outputs: per question a Markdown report, a self-contained sanitized HTML report and JSON,
and an index (Markdown and HTML) for the batch.

The HTML is meant to be opened from a shared folder or mailed around, so it loads nothing: no scripts,
no images, no fonts, no external style sheet, and a Content-Security-Policy that forbids them even if
something slipped through. Model text is Markdown rendered with raw HTML disabled (it shows as text),
links limited to http(s), in-page anchors and the batch's own report files, and images turned into
plain links (a remote image is a tracking pixel). Numbered citations link to the sources list.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadline.storage.records import JobRecord

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; base-uri 'none'"
_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b}h1{font-size:1.5rem}
h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;
vertical-align:top}
code{background:#f4f4f4;padding:0 .2rem}.muted{color:#666}.failed{color:#a40000}blockquote{color:#444;
border-left:3px solid #ccc;margin-left:0;padding-left:1rem}
"""
_CITATION = re.compile(r"\[(\d{1,3})\](?!\()")


@dataclass(frozen=True)
class WrittenReport:
    """The files written for one question."""

    question_id: str
    markdown: Path
    html: Path
    json: Path


def slug(question_id: str) -> str:
    """A file name for a question id: safe characters only, a digest suffix when any were replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", question_id)[:80].strip("._") or "q"
    if safe != question_id:
        safe += "-" + hashlib.sha256(question_id.encode()).hexdigest()[:8]
    return safe


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|!])", r"\\\1", " ".join(text.split()))


def question_markdown(job: JobRecord) -> str:
    """The Markdown report of one job: answer or report, sources, spend and the controller's decisions."""
    result = job.result or {}
    lines = [f"# {_md_escape(job.question)}", ""]
    status = job.status if job.status != "done" else "done"
    meta = f"Question `{job.question_id}` · {status}"
    if result.get("run_id") or job.run_id:
        meta += f" · run `{result.get('run_id') or job.run_id}`"
    lines += [meta, ""]
    if job.status == "failed":
        lines += ["## Error", "", _md_escape(job.error or "unknown error"), ""]
    if result.get("report"):
        lines += ["## Report", "", str(result["report"]).strip(), ""]
    elif result.get("answer") is not None and job.status == "done":
        lines += ["## Answer", "", str(result["answer"]).strip() or "_(no answer)_", ""]
    citations = result.get("citations") or []
    if citations:
        lines += ["## Sources", ""]
        for c in citations:
            title = _md_escape(str(c.get("title") or c.get("doc_id") or "source"))
            url = str(c.get("url") or "")
            target = f"[{title}]({url})" if url.startswith(("http://", "https://")) else title
            lines.append(f'{c.get("n")}. <a id="src-{c.get("n")}"></a>{target} — `{c.get("doc_id", "")}`')
            passage = " ".join(str(c.get("passage") or "").split())[:400]
            if passage:
                lines.append(f"   > {_md_escape(passage)}")
        lines.append("")
    spend = result.get("spend") or {}
    if spend:
        lines += [
            "## Spend",
            "",
            "| generated tokens | prompt tokens | searches | page reads | LLM calls | seconds |",
            "|---|---|---|---|---|---|",
            f"| {spend.get('tokens', 0)} | {spend.get('prompt_tokens', 0)} | {spend.get('searches', 0)} "
            f"| {spend.get('fetches', 0)} | {spend.get('llm_calls', 0)} "
            f"| {float(spend.get('seconds', 0)):.1f} |",
            "",
        ]
        if job.grant_tokens is not None:
            lines += [
                f"Granted from the batch pool: {job.grant_tokens} tokens, {job.grant_searches} searches "
                f"(planned share {job.share_tokens} tokens, {job.share_searches} searches).",
                "",
            ]
    lines += _decisions(result)
    return "\n".join(lines).rstrip() + "\n"


def _decisions(result: dict[str, Any]) -> list[str]:
    alloc = result.get("allocation") or {}
    decisions = result.get("decisions") or []
    if not alloc and not decisions and not result.get("forced"):
        return []
    out = ["## Controller decisions", ""]
    if alloc.get("difficulty") is not None:
        unc = alloc.get("difficulty_uncertainty")
        out.append(
            f"- Difficulty: {float(alloc['difficulty']):.2f}" + (f" (±{float(unc):.2f})" if unc else "")
        )
    if alloc:
        out.append(
            f"- Allocation: {alloc.get('tokens')} tokens, {alloc.get('searches')} searches, "
            f"shape {alloc.get('shape', 'sequential')}"
            + (f" — {_md_escape(str(alloc['reason']))}" if alloc.get("reason") else "")
        )
    stop = next((d for d in reversed(decisions) if d.get("action") == "answer"), None)
    why = result.get("forced") and f"the {result['forced']} limit forced the answer"
    if stop is not None or why:
        out.append(f"- Stopped: {_md_escape(str(why or stop.get('detail', '')))}")  # type: ignore[union-attr]
    for d in decisions:
        out.append(f"  - step {d.get('step')}: {d.get('action')} — {_md_escape(str(d.get('detail', '')))}")
    return [*out, ""]


def _renderer() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    default_validate = md.validateLink

    def validate(url: str) -> bool:
        u = url.strip().lower()
        local = re.fullmatch(r"[A-Za-z0-9._-]+\.(html|md)", u) is not None  # a report beside this one
        return default_validate(url) and (local or u.startswith(("http://", "https://", "#")))

    md.validateLink = validate  # type: ignore[method-assign]

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = html.escape(str(token.attrGet("src") or ""))
        alt = html.escape(token.content or "image")
        return f'<span class="muted">[image: {alt}, not loaded: {src}]</span>'

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        href = str(tokens[idx].attrGet("href") or "")
        if not href.startswith("#"):
            tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return str(self.renderToken(tokens, idx, options, env))

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def render_html(markdown: str, *, title: str) -> str:
    """Markdown to one self-contained, sanitized HTML page (see the module doc)."""
    body = _renderer().render(_link_citations(markdown))
    # the source anchors were written as raw HTML, which the renderer escapes: restore just those
    body = re.sub(r"&lt;a id=&quot;(src-\d{1,3})&quot;&gt;&lt;/a&gt;", r'<a id="\1"></a>', body)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )


def _link_citations(markdown: str) -> str:
    """``[2]`` in the text becomes a link to source 2 (not inside code, not an existing link)."""
    parts = re.split(r"(`[^`]*`)", markdown)
    return "".join(p if p.startswith("`") else _CITATION.sub(r"[\\[\1\\]](#src-\1)", p) for p in parts)


def write_question(job: JobRecord, out_dir: Path) -> WrittenReport:
    """Write the Markdown, HTML and JSON of one job into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = slug(job.question_id)
    markdown = question_markdown(job)
    paths = WrittenReport(
        job.question_id, out_dir / f"{name}.md", out_dir / f"{name}.html", out_dir / f"{name}.json"
    )
    _atomic_write(paths.markdown, markdown)
    _atomic_write(paths.html, render_html(markdown, title=job.question))
    _atomic_write(paths.json, json.dumps(job_json(job), indent=2, default=str) + "\n")
    return paths


def job_json(job: JobRecord) -> dict[str, Any]:
    """The JSON record of one job: the input, the status and the result."""
    return {
        "id": job.question_id,
        "question": job.question,
        "status": job.status,
        "error": job.error,
        "run_id": job.run_id,
        "attempts": job.attempts,
        "grant": {"tokens": job.grant_tokens, "searches": job.grant_searches},
        "share": {"tokens": job.share_tokens, "searches": job.share_searches},
        "input": job.extra,
        "result": job.result,
    }


def index_markdown(batch_id: str, jobs: Sequence[JobRecord], summary: str) -> str:
    """The batch's index: one row per question with its status, answer and spend, linked to its report."""
    lines = [f"# Batch `{batch_id}`", "", _md_escape(summary), ""]
    lines += ["| # | question | status | answer | tokens | searches |", "|---|---|---|---|---|---|"]
    for i, job in enumerate(jobs, 1):
        result = job.result or {}
        spend = result.get("spend") or {}
        answer = str(result.get("answer") or job.error or "")
        link = f"[{_md_escape(job.question[:120])}]({slug(job.question_id)}.html)"
        if job.status not in ("done", "failed"):
            link = _md_escape(job.question[:120])
        lines.append(
            f"| {i} | {link} | {job.status} | {_md_escape(answer[:160])} "
            f"| {spend.get('tokens', '')} | {spend.get('searches', '')} |"
        )
    return "\n".join(lines) + "\n"


def write_index(batch_id: str, jobs: Sequence[JobRecord], out_dir: Path, summary: str) -> tuple[Path, Path]:
    """Write ``index.md`` and ``index.html`` (links point at the per-question HTML reports)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = index_markdown(batch_id, jobs, summary)
    md_path, html_path = out_dir / "index.md", out_dir / "index.html"
    _atomic_write(md_path, markdown.replace(".html)", ".md)"))
    _atomic_write(html_path, render_html(markdown, title=f"Batch {batch_id}"))
    return md_path, html_path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


__all__ = [
    "WrittenReport",
    "index_markdown",
    "job_json",
    "question_markdown",
    "render_html",
    "slug",
    "write_index",
    "write_question",
]
