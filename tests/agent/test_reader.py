"""The reader's text work (question shape, source ranking, snapping, support) and what it puts in the
result: supporting sentences, confidence and its basis, unsure runs, reports whose claims are checked."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from leadline import Budget, Researcher, Settings
from leadline.agent.reader import (
    claim_support,
    question_shape,
    rank_sources,
    snap_to_option,
    snap_to_source,
    supported,
    supporting_sentence,
    uncovered_names,
)
from leadline.agent.state import Evidence
from leadline.llm.base import GenerationParams, Message
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document

from .conftest import QUESTION, sensible


def ev(n: int, title: str, text: str, rank: int = 1) -> Evidence:
    return Evidence(n=n, doc_id=f"d{n}", title=title, url="", text=text, query="q", score=1.0, rank=rank)


def test_question_shapes() -> None:
    choice = question_shape("Who was born first, Sandy Denny or Jack White?")
    assert (choice.kind, choice.options) == ("choice", ("Sandy Denny", "Jack White"))
    assert question_shape("Which is older, the Eiffel Tower or the Statue of Liberty?").options == (
        "Eiffel Tower",
        "Statue of Liberty",
    )
    assert question_shape("Are Scott Derrickson and Ed Wood of the same nationality?").kind == "yesno"
    assert question_shape("What county is Erik Hort's birthplace a part of?").kind == "open"
    assert snap_to_option("Yes, both are American", question_shape("Were both American?")) == "yes"
    assert snap_to_option("Jack White was", choice) == "Jack White"
    assert snap_to_option("neither", choice) == "neither"


def test_sources_are_ranked_by_words_shared_with_question_and_notes() -> None:
    evidence = [
        ev(1, "Cats", "Cats are small animals.", rank=1),
        ev(2, "The Selfish Gene", "The Selfish Gene is a book by Richard Dawkins.", rank=2),
        ev(3, "Richard Dawkins", "Dawkins studied at Balliol College.", rank=3),
    ]
    shown = rank_sources(evidence, QUESTION, ["The author is Richard Dawkins"], 2)
    assert [e["n"] for e in shown] == [2, 3]  # citation order, the unrelated source left out


def test_a_paraphrased_answer_snaps_to_the_words_of_its_source() -> None:
    question = "Which character did Robert Belushi play?"
    source = ["Robert Belushi played Lucas in the final season."]
    assert snap_to_source("He played Lucas", source, question) == "Lucas"
    assert snap_to_source("Lucas", source, question) == "Lucas"  # verbatim: kept
    assert snap_to_source("Marshall", source, question) == "Marshall"  # nothing close: kept
    assert snap_to_source("the year 1923", ["It was founded in 1923 by John."], "When founded?") == "1923"


def test_the_supporting_sentence_is_a_whole_sentence() -> None:
    passage = "Robert Belushi is an actor. He played Lucas in How I Met Your Mother. He was born in 1980."
    assert supporting_sentence("Lucas", passage) == "He played Lucas in How I Met Your Mother."
    assert supporting_sentence("Marshall", passage) == ""


def test_claim_support_needs_the_words_and_the_numbers() -> None:
    passage = "The Selfish Gene is a 1976 book on evolution by the ethologist Richard Dawkins."
    assert supported("The Selfish Gene is a 1976 book by Richard Dawkins.", passage)
    assert not supported("The Selfish Gene is a 1986 book by Richard Dawkins.", passage)
    assert claim_support("The Brooklyn Bridge is a Portuguese bridge over the Douro.", passage) < 0.3
    assert uncovered_names("What is the history of the Brooklyn Bridge?", [passage]) == ["Brooklyn Bridge"]
    assert uncovered_names("Who wrote The Selfish Gene?", [passage]) == []


def _make(docs: list[Document], reply: Callable[[Sequence[Message], GenerationParams], str]) -> Researcher:
    return Researcher(Settings(), llm=ScriptedLLM(reply), search=FakeSearch(docs), store=MemoryRunStore())


def test_the_answer_carries_its_supporting_sentence_and_confidence_basis(docs: list[Document]) -> None:
    result = _make(docs, sensible).research(QUESTION, budget=Budget(tokens=600, searches=3))
    assert result.answer == "Balliol College"
    assert result.citations[0].support == "Richard Dawkins studied at Balliol College, Oxford."
    assert not result.unsure
    assert "the answer appears in source [2]" in result.confidence_basis
    assert result.to_dict()["citations"][0]["support"] == result.citations[0].support


def answering(answer: str, source: int) -> Callable[[Sequence[Message], GenerationParams], str]:
    """The sensible model, except that its answer step replies ``answer`` citing ``source``."""

    def reply(messages: Sequence[Message], params: GenerationParams) -> str:
        if '"answer"' in messages[-1].content and '"next_query"' not in messages[-1].content:
            return json.dumps({"answer": answer, "sources": [source]})
        return sensible(messages, params)

    return reply


def test_an_answer_the_sources_do_not_contain_is_marked_unsure(docs: list[Document]) -> None:
    guessing = answering("Trinity College", 2)
    result = _make(docs, guessing).research(QUESTION, budget=Budget(tokens=600, searches=3))
    assert result.answer == "Trinity College"
    assert result.unsure
    assert "does not appear in the sources" in result.confidence_basis


def test_a_yes_or_no_to_a_question_that_asks_for_something_else_is_unsure(docs: list[Document]) -> None:
    # QUESTION asks "which college": a bare "Yes" is no answer to it, whatever the model cites
    yes = answering("Yes", 2)
    result = _make(docs, yes).research(QUESTION, budget=Budget(tokens=600, searches=3))
    assert result.answer == "Yes" and result.unsure
    assert "a yes/no reply to a question that asks for something else" in result.confidence_basis
    report = _make(docs, yes).research(QUESTION, budget=Budget(tokens=900, searches=3), mode="report")
    assert "**Answer:** Yes" not in (report.report or "")
    assert "do not clearly answer" in (report.report or "")


def test_a_yes_or_no_judgement_cites_a_source_on_each_thing_it_compares() -> None:
    docs = [
        Document(doc_id="a", title="Scott Derrickson", text="Scott Derrickson is an American director."),
        Document(doc_id="b", title="Ed Wood", text="Edward Davis Wood Jr. was an American filmmaker."),
    ]

    def judge(messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        if '"queries"' in prompt:
            return json.dumps({"queries": ["Scott Derrickson", "Ed Wood"]})
        if '"next_query"' in prompt:
            return json.dumps({"known": "both American", "answer_so_far": "yes", "next_query": ""})
        return json.dumps({"answer": "yes", "sources": [1]})  # the model cites one of the two

    q = "Were Scott Derrickson and Ed Wood of the same nationality?"
    result = _make(docs, judge).research(q, budget=Budget(tokens=600, searches=2))
    assert result.answer.lower() == "yes" and not result.unsure
    assert {c.title for c in result.citations} == {"Scott Derrickson", "Ed Wood"}


def test_report_claims_cite_a_source_that_says_them(docs: list[Document]) -> None:
    def reporting(messages: Sequence[Message], params: GenerationParams) -> str:
        if '"findings"' in messages[-1].content:
            return json.dumps(
                {
                    "findings": [
                        {"claim": "Richard Dawkins studied at Balliol College", "source": 2},
                        {"claim": "The Selfish Gene was published in 1976", "source": 1},
                        {"claim": "Dawkins won the Nobel Prize in 1990", "source": 2},  # no source says it
                    ],
                    "open_question": "What did he study?",
                }
            )
        return sensible(messages, params)

    result = _make(docs, reporting).research(QUESTION, budget=Budget(tokens=1500, searches=3), mode="report")
    report = result.report or ""
    findings = [line for line in report.splitlines() if line.startswith("- ") and "[" in line]
    assert findings == [
        "- Richard Dawkins studied at Balliol College. [2]",
        "- The Selfish Gene is a 1976 book by Richard Dawkins. [1]",  # replaced by its source's sentence
    ]
    assert "Nobel" not in report
    assert "**Answer:** Balliol College [2]" in report
    assert "- What did he study?" in report and "## Sources" in report


def test_a_report_on_a_question_the_sources_do_not_cover_says_so(docs: list[Document]) -> None:
    question = "What is the history of the Brooklyn Bridge and who designed it?"
    result = _make(docs, sensible).research(question, budget=Budget(tokens=1500, searches=2), mode="report")
    report = result.report or ""
    assert "do not cover this question: none of them mentions Brooklyn Bridge" in report
    assert "## Findings" not in report


def test_reader_options_parse_lever_lists_and_refuse_unknown_ones() -> None:
    import pytest

    from leadline.agent.nodes.answer import ReaderOptions
    from leadline.errors import ConfigError

    opts = ReaderOptions.parse("k=4,rank,quote,snap,shape,samples=3")
    assert (opts.max_sources, opts.rank, opts.quote, opts.snap, opts.shape, opts.samples) == (
        4,
        True,
        True,
        True,
        True,
        3,
    )
    assert ReaderOptions.parse("baseline") == ReaderOptions(
        max_sources=8, rank=False, quote=False, snap=False, shape=False
    )
    with pytest.raises(ConfigError, match="unknown reader lever 'fast'"):
        ReaderOptions.parse("k=4,fast")


def test_a_long_answer_is_cut_to_its_first_clause() -> None:
    from leadline.agent.reader import trim_answer

    long = "Leyton, East London, in 1975 by bassist and primary songwriter Steve Harris"
    assert trim_answer(long) == "Leyton"
    assert trim_answer("The Carry On franchise") == "The Carry On franchise"  # short: kept
    assert trim_answer("Silverplate version of the Boeing B - 29 Superfortress") == (
        "Silverplate version of the Boeing B - 29 Superfortress"  # spaced hyphens are not clause breaks
    )


def test_an_answer_its_named_sources_do_not_contain_cites_the_source_that_does(docs: list[Document]) -> None:
    miscite = answering("Balliol College", 1)  # [1] is the book
    result = _make(docs, miscite).research(QUESTION, budget=Budget(tokens=600, searches=3))
    assert [c.doc_id for c in result.citations] == ["d2", "d1"]
    assert result.citations[0].support == "Richard Dawkins studied at Balliol College, Oxford."
