"""Batch reports: Markdown, and HTML that loads nothing and runs nothing whatever the model wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

from leadline.batch.reports import render_html, slug, write_index, write_question
from leadline.storage.records import JobRecord

HOSTILE = (
    "## Findings\n\nDawkins studied at Balliol [1].<script>alert(1)</script>\n\n"
    "![tracker](http://evil.example/pixel.png) [click](javascript:alert(2)) "
    '<img src="http://evil.example/x.png" onerror="alert(3)"> [ok](https://example.org/a)\n'
)


def _job(**kw: object) -> JobRecord:
    result = {
        "run_id": "r1",
        "answer": "Balliol College",
        "report": HOSTILE,
        "citations": [
            {
                "n": 1,
                "doc_id": "d2",
                "title": "Richard <b>Dawkins</b>",
                "url": "https://example.org/d",
                "passage": "p",
            }
        ],
        "spend": {
            "tokens": 40,
            "prompt_tokens": 300,
            "searches": 2,
            "fetches": 1,
            "llm_calls": 3,
            "seconds": 1.5,
        },
        "allocation": {
            "difficulty": 0.4,
            "difficulty_uncertainty": 0.2,
            "tokens": 300,
            "searches": 2,
            "reason": "plan",
        },
        "decisions": [
            {"step": 3, "node": "decide", "action": "answer", "detail": "stop early: gain below price"}
        ],
        "forced": None,
    }
    values: dict = {
        "job_id": 1,
        "batch_id": "b",
        "question_id": "q/1",
        "question": "Where did <Dawkins> study?",
        "status": "done",
        "run_id": "r1",
        "result": result,
        "grant_tokens": 300,
        "grant_searches": 2,
        "share_tokens": 200,
        "share_searches": 2,
    }
    values.update(kw)
    return JobRecord(**values)


def test_html_is_self_contained_and_sanitized(tmp_path: Path) -> None:
    paths = write_question(_job(), tmp_path)
    page = paths.html.read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "<img" not in page and 'href="javascript' not in page
    assert "onerror=" not in page.replace("onerror=&quot;", "")  # only as escaped text
    assert "&lt;script&gt;" in page  # the model's HTML shows as text
    assert "not loaded: http://evil.example/pixel.png" in page
    assert 'href="https://example.org/a" rel="noopener noreferrer nofollow"' in page
    assert (
        re.search(r'<a href="#src-1">\[1\]</a>', page) and '<a id="src-1"></a>' in page
    )  # numbered citation
    assert not re.search(r"(src|href)=\"(?!#|https://example\.org)", page)  # nothing else linked or loaded
    md = paths.markdown.read_text()
    assert "## Sources" in md and "## Spend" in md and "Difficulty: 0.40" in md
    assert "Stopped: stop early: gain below price" in md and "planned share 200 tokens" in md
    data = json.loads(paths.json.read_text())
    assert data["id"] == "q/1" and data["result"]["answer"] == "Balliol College"
    assert paths.html.name == slug("q/1") + ".html" and "/" not in paths.html.name


def test_index_lists_every_question_with_its_status(tmp_path: Path) -> None:
    jobs = [_job(), _job(job_id=2, question_id="q2", status="failed", error="server said no", result=None)]
    md, html = write_index("b", jobs, tmp_path, "1 done, 1 failed")
    text = md.read_text()
    assert "| done |" in text and "| failed |" in text and "server said no" in text
    assert f"({slug('q/1')}.md)" in text
    assert f'href="{slug("q/1")}.html"' in html.read_text()


def test_render_html_escapes_titles() -> None:
    page = render_html("# hi", title="<script>x</script>")
    assert "<title>&lt;script&gt;x&lt;/script&gt;</title>" in page
