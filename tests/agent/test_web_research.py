"""The loop over the web path, wired as `leadline ask --search searxng` builds it: a local site with a
SearxNG-format endpoint, the SSRF-guarded fetcher, extraction, the page store in the run database."""

from __future__ import annotations

import json
from pathlib import Path

from leadline import Budget, Researcher, Settings
from leadline.storage.store import SqlRunStore
from leadline.testing import ScriptedLLM
from leadline.tools.site_server import serve_site

SITE = Path(__file__).resolve().parents[1] / "tools" / "web" / "pages" / "site"


def test_research_over_a_local_site_through_fetch_and_extraction(leadline_home: Path) -> None:
    seen_prompts: list[str] = []

    def respond(messages, params):  # type: ignore[no-untyped-def]
        prompt = messages[-1].content
        seen_prompts.append(prompt)
        if '"queries"' in prompt:
            return json.dumps({"queries": ["vacuum lock"]})
        if '"next_query"' in prompt:
            return json.dumps({"known": "VACUUM FULL takes a lock", "answer_so_far": "", "next_query": ""})
        return json.dumps({"answer": "ACCESS EXCLUSIVE", "sources": [1]})

    with serve_site(SITE) as site:
        settings = Settings(home=leadline_home, search="searxng", searxng_url=site.url)
        store = SqlRunStore.from_url(settings.database_url)
        with Researcher(settings, llm=ScriptedLLM(respond), store=store) as researcher:
            result = researcher.research(
                "Which lock does VACUUM FULL take?", budget=Budget(tokens=600, searches=2)
            )
            # the site stops serving pages (search still answers): a second run must read them from the
            # page store in the run database, not fetch them again
            site.app.files = {}
            again = researcher.research(
                "Which lock does VACUUM FULL take?", budget=Budget(tokens=600, searches=2)
            )
    assert result.answer == "ACCESS EXCLUSIVE"
    assert result.citations and result.citations[0].url.startswith(site.url)
    assert result.spend.fetches >= 1
    assert "vacuum" in result.citations[0].passage.lower()
    source_prompts = [p for p in seen_prompts if "Sources:" in p]
    assert source_prompts and "VACUUM" in source_prompts[-1]
    fetched = [s for s in store.list_steps(result.run_id) if s.kind == "fetch"]
    assert fetched and all(s.fetches == 1 for s in fetched)
    assert [c.passage for c in again.citations] == [c.passage for c in result.citations]
