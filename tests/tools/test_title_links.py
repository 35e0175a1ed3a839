"""Links between passages: a passage links to the passages whose titles it names."""

from __future__ import annotations

from pathlib import Path

from leadline.tools.corpus_index import CorpusIndex, CorpusSearch
from leadline.tools.passages import Passage
from leadline.tools.title_links import TitleLinks, title_key

FILM = Passage(
    id="film",
    title="Night Harbour",
    text="Night Harbour is a 1994 drama film directed by Jane Okafor and scored by Blood, Sweat & Tears.",
)
PASSAGES = [
    FILM,
    Passage(id="jane", title="Jane Okafor", text="Jane Okafor (born in Kumasi) is a film maker."),
    Passage(id="band", title="Blood, Sweat & Tears", text="A jazz rock band formed in New York City."),
    Passage(id="harbour", title="Harbour", text="A harbour is a sheltered body of water."),
    Passage(id="kumasi", title="Kumasi", text="Kumasi is a city in the Ashanti Region."),
    Passage(id="a", title="A", text="The first letter: too short to be a link."),
    Passage(id="drama", title="Drama film", text="A drama film is a film genre. Night Harbour is one."),
]


def test_a_text_names_whole_titles_case_kept_punctuation_ignored() -> None:
    links = TitleLinks((p.title, p.id) for p in PASSAGES)
    named = links.named_in(FILM.text)
    assert title_key("Blood, Sweat & Tears") in named  # punctuation is not a word
    assert title_key("Jane Okafor") in named
    assert title_key("Harbour") in named  # a title inside a longer one counts too
    assert title_key("Drama film") not in named  # case is kept: "drama film" is not the title
    assert title_key("A") not in named  # shorter than MIN_TITLE_CHARS
    assert named.index(title_key("Jane Okafor")) < named.index(title_key("Blood, Sweat & Tears"))


def test_linked_passages_leave_out_those_the_query_names() -> None:
    links = TitleLinks((p.title, p.id) for p in PASSAGES)
    linked = links.linked([FILM.text], named_by_query="Where was the director of Night Harbour born?")
    assert linked == ["jane", "band"]  # "Night Harbour" and "Harbour" are named by the query itself
    assert links.linked(["nothing named here"]) == []


def test_the_index_follows_links_best_first_by_the_query(tmp_path: Path) -> None:
    index = CorpusIndex.build(PASSAGES, tmp_path / "idx", name="films")
    question = "Where was the director of Night Harbour born?"
    top = index.search(question, k=1)
    assert [r.doc_id for r in top] == ["film"]
    linked = index.linked(question, top, n=2)
    # "born" scores Jane Okafor's passage above the band's, which no query word matches
    assert [r.doc_id for r in linked] == ["jane", "band"]
    assert [r.linked_from for r in linked] == ["film", "film"]
    assert [r.rank for r in linked] == [2, 3]  # after the results that name them
    assert linked[0].text == PASSAGES[1].text
    assert index.linked(question, top, n=1) == linked[:1]
    assert index.linked(question, [], n=2) == []


def test_a_search_that_follows_links_brings_them_after_its_own(tmp_path: Path) -> None:
    import asyncio

    backend = CorpusSearch(CorpusIndex.build(PASSAGES, tmp_path / "idx", name="films"))
    question = "Where was the director of Night Harbour born?"
    plain = asyncio.run(backend.search(question, k=1))
    linked = asyncio.run(backend.search(question, k=1, links=1))
    assert [r.doc_id for r in plain] == ["film"]
    assert [(r.doc_id, r.linked_from) for r in linked] == [("film", ""), ("jane", "film")]
    assert "linked_from" not in plain[0].to_dict()  # results of a plain search read as before
    assert type(linked[1]).from_dict(linked[1].to_dict()) == linked[1]


def test_the_researcher_takes_its_links_from_the_settings_unless_given() -> None:
    import pytest

    from leadline import Researcher, Settings
    from leadline.errors import ConfigError

    assert Researcher(Settings()).search_links == 2  # the default (config.DEFAULT_SEARCH_LINKS)
    assert Researcher(Settings(search_links=0)).search_links == 0
    assert Researcher(Settings(search_links=2)).search_links == 2
    assert Researcher(Settings(search_links=2), search_links=1).search_links == 1
    with pytest.raises(ConfigError, match="from 0 to 16"):
        Researcher(Settings(), search_links=-1)
    with pytest.raises(ConfigError, match="from 0 to 16"):
        Settings(search_links=17)
    from leadline.cli_shared import research_settings

    assert research_settings(search_links=3).search_links == 3  # what --search-links sets
