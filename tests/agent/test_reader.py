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
    # the options between two commas, or two names at the end with no comma before them
    assert question_shape("Which band, Letters to Cleo or Screaming Trees, had more members?").options == (
        "Letters to Cleo",
        "Screaming Trees",
    )
    assert question_shape("who is younger Keith Bostic or Jerry Glanville ?").options == (
        "Keith Bostic",
        "Jerry Glanville",
    )
    assert question_shape('Which movie was filmed first "The Guest" or "You\'re Next"?').options == (
        "Guest",
        "You're Next",
    )
    # a colon inside a title stays in the option; one that ends the question's own words separates
    assert question_shape("Which came out first, Dune: Part Two or Wicked?").options == (
        "Dune: Part Two",
        "Wicked",
    )
    assert question_shape("Which river is longer: the Rhine or the Danube?").options == ("Rhine", "Danube")
    # a question that opens with the two things it chooses between
    assert question_shape("Between Zadie Smith and Ian McEwan, which novelist was born first?").options == (
        "Zadie Smith",
        "Ian McEwan",
    )
    assert question_shape("In between Pride and Prejudice and Emma which was published later?").options == (
        "Pride and Prejudice",
        "Emma",
    )
    assert question_shape("What lies between Paris and Lyon?").kind == "open"
    # a question after a statement is the last sentence's
    assert (
        question_shape("The painter Ann Lee has a studio. Does the sculptor Bo Li also have one?").kind
        == "yesno"
    )
    assert question_shape("Who did St. Anthony meet in Padua?").kind == "open"
    assert question_shape("Are The Blues Bros. Band members American?").kind == "yesno"
    # "or not" inside a title does not split it
    assert question_shape("Which was released first, Scream or Ready or Not?").options == (
        "Scream",
        "Ready or Not",
    )
    # a name whose parts a lower-case particle joins is one option
    assert question_shape("Who was born first Zulfikar Ali Bhutto or Ibn Khaldun?").options == (
        "Zulfikar Ali Bhutto",
        "Ibn Khaldun",
    )
    assert question_shape("Who died first Abd al Rahman or Charles de Gaulle?").options == (
        "Abd al Rahman",
        "Charles de Gaulle",
    )
    # two names joined by "or" in a question led by an auxiliary, or in the middle of a wh-question
    assert question_shape("Did Ringo Starr play with The Beatles or The Who?").options == ("Beatles", "Who")
    assert question_shape("Is Vogue or Time magazine published more often?").options == ("Vogue", "Time")
    assert question_shape("Which city Lyon or Marseille is further south?").options == ("Lyon", "Marseille")
    # a title that holds "or", in a wh-question that compares nothing, is no choice
    assert question_shape("Who directed Now or Never?").kind == "open"
    # a yes/no question whose "or" joins no two names stays yes/no
    assert question_shape("Did the director win an Oscar or a Golden Globe?").kind == "yesno"
    # "or" inside an open question's phrase, with no names on both sides, is no choice
    assert (
        question_shape("Who directed the film that was shot in or around Leland, North Carolina?").kind
        == "open"
    )
    assert question_shape("What label was responsible for who sang or played Delta Hardware?").kind == "open"
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


def test_a_comparison_names_the_two_things_it_compares() -> None:
    from leadline.agent.reader import compared_entities, date_order, pick_by_date

    def pair(q: str) -> tuple[str, str] | None:
        return compared_entities(q, question_shape(q))

    assert pair("Who was born first, Sandy Denny or Jack White?") == ("Sandy Denny", "Jack White")
    assert pair("Are King Vidor and Géza von Cziffra both American directors?") == (
        "King Vidor",
        "Géza von Cziffra",
    )
    assert pair("Were Sound Team and Dead by Sunrise both formed before 2010?") == (
        "Sound Team",
        "Dead by Sunrise",
    )
    assert pair('Are both "Cooking Light" and "Vibe" magazines?') == ("Cooking Light", "Vibe")
    assert pair("Are Marian Gold and Jung Eun-ji members of the same band?") == ("Marian Gold", "Jung Eun-ji")
    assert pair("Is the Eiffel Tower taller than Big Ben?") is None  # no "and": not a pair
    assert pair("Did the band and the singer win?") is None  # no names
    assert pair("What county is Erik Hort's birthplace a part of?") is None
    assert date_order("Who was born first, Sandy Denny or Jack White?") == "earlier"
    assert date_order("Which film is more recent, Up or Cars?") == "later"
    assert date_order("Which is larger, A or B?") is None
    options = ("Sandy Denny", "Jack White")
    facts = ("Sandy Denny was born in 1947.", "Jack White was born on July 9, 1975.")
    assert pick_by_date("Who was born first, Sandy Denny or Jack White?", options, facts) == "Sandy Denny"
    assert pick_by_date("Who is younger, Sandy Denny or Jack White?", options, facts) == "Jack White"
    assert (
        pick_by_date("Who was born first, Sandy Denny or Jack White?", options, (facts[0], "unknown")) is None
    )


def test_the_compare_reader_answers_over_each_sides_fact() -> None:
    import asyncio

    from leadline.agent.nodes.answer import ReaderOptions, read_answer

    shown = [
        ev(1, "Jack White", "Jack White (born July 9, 1975) is an American musician.", rank=1),
        ev(2, "Sandy Denny", "Sandy Denny (6 January 1947 - 21 April 1978) was an English singer.", rank=2),
        ev(3, "Fairport Convention", "Fairport Convention are an English folk rock band.", rank=3),
    ]
    asked: list[str] = []

    def reply(messages: Sequence[Message], params: GenerationParams) -> str:
        user = messages[-1].content
        asked.append(user)
        if "Write the one fact" in user:
            who = "Sandy Denny" if "compares Sandy Denny" in user else "Jack White"
            return json.dumps({"fact": f"{who} was born in {1947 if who == 'Sandy Denny' else 1975}."})
        return json.dumps({"answer": "Jack White", "sources": [1]})  # the model picks the wrong one

    chat = ScriptedLLM(reply).chat
    q = "Who was born first, Sandy Denny or Jack White?"
    got = asyncio.run(
        read_answer(
            chat, q, shown, [], opts=ReaderOptions.parse("shape,compare"), max_chars=300, budget_line=""
        )
    )
    assert got.text == "Sandy Denny"  # the years decide an earlier/later question
    facts, answer_prompt = asked[:2], asked[-1]
    assert len(asked) == 3 and all("Write the one fact" in u for u in facts)
    assert "Sandy Denny (6 January 1947" in facts[0] and "Jack White (born" not in facts[0]  # its own source
    assert (
        "Sandy Denny was born in 1947." in answer_prompt and "Jack White was born in 1975." in answer_prompt
    )
    asked.clear()
    plain = asyncio.run(
        read_answer(chat, q, shown, [], opts=ReaderOptions.parse("shape"), max_chars=300, budget_line="")
    )
    assert plain.text == "Jack White" and len(asked) == 1  # without the lever: one call, the model's answer


def test_each_answer_call_of_a_comparison_is_recorded_under_its_own_key() -> None:
    from leadline.agent.nodes import answer as answer_module
    from leadline.agent.nodes.answer import ReaderOptions

    docs = [
        Document(
            doc_id="a", title="Sandy Denny", text="Sandy Denny (born 6 January 1947) was an English singer."
        ),
        Document(
            doc_id="b", title="Jack White", text="Jack White (born July 9, 1975) is an American musician."
        ),
    ]

    def model(messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        if '"queries"' in prompt:
            return json.dumps({"queries": ["Sandy Denny", "Jack White"]})
        if '"next_query"' in prompt:
            return json.dumps({"known": "two singers", "answer_so_far": "", "next_query": ""})
        if '"fact"' in prompt:
            return json.dumps(
                {"fact": "Sandy Denny was born in 1947." if "compares Sandy" in prompt else "unknown"}
            )
        return json.dumps({"answer": "Sandy Denny", "sources": [1]})

    store = MemoryRunStore()
    researcher = Researcher(Settings(), llm=ScriptedLLM(model), search=FakeSearch(docs), store=store)
    q = "Who was born first, Sandy Denny or Jack White?"
    saved = answer_module.DEFAULT_READER
    answer_module.DEFAULT_READER = ReaderOptions.parse("trim,shape,compare")
    try:
        result = researcher.research(q, budget=Budget(tokens=800, searches=2))
        short = researcher.research(q, budget=Budget(tokens=150, searches=2))
    finally:
        answer_module.DEFAULT_READER = saved
    assert result.answer == "Sandy Denny"
    keys = [s.key for s in store.list_steps(result.run_id) if s.node == "answer"]
    assert len(keys) == 3 and len(set(keys)) == 3  # two facts and the answer, none replayed as another
    # with too few tokens left for the side calls the reader answers without them
    assert short.answer == "Sandy Denny" and not short.forced
    assert len([s for s in store.list_steps(short.run_id) if s.node == "answer"]) == 1


def test_a_yes_no_comparison_is_decided_one_fact_at_a_time() -> None:
    import asyncio

    from leadline.agent.nodes.answer import judge_pair
    from leadline.agent.reader import compared_entities, same_attribute, values_agree

    assert same_attribute("Are Nantong and Jingdezhen situated in the same province ?") == "province"
    assert same_attribute("Are King Vidor and Géza von Cziffra both American directors?") is None
    assert values_agree("Jiangsu", "Jiangsu province") and values_agree("Jiangsu", "Jiangxi") is False
    assert values_agree("unknown", "Jiangxi") is None

    def model(messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        if '"value"' in prompt:
            return json.dumps({"value": "Jiangsu" if "Fact: Nantong" in prompt else "Jiangxi"})
        american = "Fact: King Vidor" in prompt  # the other director is Hungarian
        return json.dumps({"answer": "yes" if american else "no"})

    chat = ScriptedLLM(model).chat

    def judge(q: str, facts: tuple[str, str]) -> str | None:
        shape = question_shape(q)
        pair = compared_entities(q, shape)
        assert pair is not None
        return asyncio.run(judge_pair(chat, q, shape, pair, facts))

    same = "Are Nantong and Jingdezhen situated in the same province?"
    assert judge(same, ("Nantong is a city in Jiangsu.", "Jingdezhen is a city in Jiangxi.")) == "no"
    both = "Are King Vidor and Géza von Cziffra both American directors?"
    assert (
        judge(both, ("King Vidor was an American director.", "Géza von Cziffra was a Hungarian director."))
        == "no"
    )
    assert (
        judge(both, ("King Vidor was an American director.", "")) is None
    )  # a side unknown: the model decides
    choice = "Which director is American, King Vidor or Géza von Cziffra?"
    assert (
        judge(choice, ("King Vidor was an American director.", "Géza von Cziffra was Hungarian."))
        == "King Vidor"
    )


def test_an_answer_that_echoes_the_question_is_recognised() -> None:
    from leadline.agent.reader import echoes_question

    q = "What is the first name of Jack Benny Binion's father?"
    assert echoes_question("Jack", q) and echoes_question("Jack Benny Binion", q)
    assert not echoes_question("Lester", q) and not echoes_question("Lester Binion", q)
    assert not echoes_question("", q) and not echoes_question("the", q)  # no word that carries meaning
    # a question that offers the things its answer is one of, however it is phrased
    assert not echoes_question("The Exies", "Which band was formed first The Exies or Circus Diablo ?")
    assert not echoes_question("Ian Watkins", "Josey Scott and Ian Watkins sang. Which of these was jailed?")


def test_the_recheck_reader_asks_again_after_an_answer_that_echoes_the_question() -> None:
    import asyncio

    from leadline.agent.nodes.answer import ReaderOptions, read_answer

    shown = [
        ev(1, "Benny Binion", "Lester Ben Binion was an American casino owner.", rank=1),
        ev(2, "Jack Binion", "Jack Binion is the son of Benny Binion.", rank=2),
    ]
    asked: list[list[Message]] = []

    def reply_with(second: str) -> Callable[[Sequence[Message], GenerationParams], str]:
        def reply(messages: Sequence[Message], params: GenerationParams) -> str:
            asked.append(list(messages))
            if len(messages) == 2:
                return json.dumps({"answer": "Jack", "sources": [2]})  # names what the question names
            return json.dumps({"answer": second, "sources": [1]})

        return reply

    q = "What is the first name of Jack Binion's father?"

    def read(opts: str, second: str = "Lester") -> str:
        asked.clear()
        chat = ScriptedLLM(reply_with(second)).chat
        got = asyncio.run(
            read_answer(chat, q, shown, [], opts=ReaderOptions.parse(opts), max_chars=300, budget_line="")
        )
        return got.text

    assert read("trim,shape,recheck") == "Lester"
    second = asked[-1]
    assert len(asked) == 2 and [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[:2] == asked[0]  # the same prompt: the engine reuses its prefix
    assert '"Jack" is already named in the question' in second[-1].content
    # a second answer that names only the question's words, or says yes or no, does not replace the first
    assert read("trim,shape,recheck", second="Jack Binion") == "Jack" and len(asked) == 2
    assert read("trim,shape,recheck", second="Yes") == "Jack"
    # without the lever: one call, the model's answer
    assert read("trim,shape") == "Jack" and len(asked) == 1
    # an either-or question's answer is one of the names it gives: no recheck
    asked.clear()
    chat = ScriptedLLM(lambda m, p: json.dumps({"answer": "Jack Binion", "sources": [2]})).chat
    either = "Who was born first, Jack Binion or Benny Binion?"
    got = asyncio.run(
        read_answer(
            chat, either, shown, [], opts=ReaderOptions.parse("recheck"), max_chars=300, budget_line=""
        )
    )
    assert got.text == "Jack Binion"


def test_an_answer_that_only_names_what_the_question_names_is_unsure(docs: list[Document]) -> None:
    # QUESTION asks which college the author of The Selfish Gene attended: "The Selfish Gene" names no college
    result = _make(docs, answering("The Selfish Gene", 1)).research(
        QUESTION, budget=Budget(tokens=600, searches=3)
    )
    assert result.answer == "The Selfish Gene" and result.unsure
    assert "the answer only names what the question names" in result.confidence_basis


def test_a_sentence_that_restates_the_question_is_cut_to_what_it_adds() -> None:
    from leadline.agent.reader import unecho

    q = "When did the state where Pocahontas Mounds is located become part of the United States?"
    restated = "The state where Pocahontas Mounds is located became part of the United States in 1817."
    assert unecho(restated, q) == "1817"  # the run with a number, not the verb the restatement adds
    country = "In which country is the representative of the country where Mount Sulivan is located?"
    assert unecho("The representative of the country where Mount Sulivan is located is the United Kingdom, "
                  "and the city where it sits", country) == "United Kingdom"  # fmt: skip
    treaty = "The basis of the union's jurisdiction began with the signing of what treaty?"
    # the answer's words are the question's (a gloss in parentheses adds nothing): kept as it is
    assert unecho("The Treaty on European Union (TEU)", treaty) == "The Treaty on European Union (TEU)"
    # short answers, and sentences that share fewer than two words with the question, are kept
    assert unecho("United Kingdom", country) == "United Kingdom"
    assert unecho("spoken between the 8th and 16th centuries", "When was it spoken?") == (
        "spoken between the 8th and 16th centuries"
    )


def test_the_unecho_lever_cuts_a_restating_answer_before_trim_does() -> None:
    import asyncio

    from leadline.agent.nodes.answer import ReaderOptions, read_answer

    shown = [ev(1, "Pocahontas Mounds", "The Pocahontas Mounds are in Mississippi, a state since 1817.")]
    reply = (
        "The state where Pocahontas Mounds is located, Mississippi, became part of the United States in 1817."
    )
    chat = ScriptedLLM(lambda m, p: json.dumps({"answer": reply, "sources": [1]})).chat
    q = "When did the state where Pocahontas Mounds is located become part of the United States?"

    def read(opts: str) -> str:
        got = asyncio.run(
            read_answer(chat, q, shown, [], opts=ReaderOptions.parse(opts), max_chars=300, budget_line="")
        )
        return got.text

    assert read("trim,shape") == "The state"  # trim's first clause
    assert read("unecho,trim,shape") == "Mississippi"  # the first added run with a name
