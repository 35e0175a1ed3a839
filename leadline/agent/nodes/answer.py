"""answer: the final short answer with numbered citations to sources the run actually read.

The reader shows the model a few sources ranked by how much they share with the question and the
run's notes, asks for the supporting sentence before the answer, tells it when the question is yes/no
or names its options, decides a comparison from each compared thing's own fact, and snaps a
paraphrased answer back to the words of its source (each of these is a :class:`ReaderOptions` switch,
measured in docs/benchmarks.md). With a parallel shape the controller
asked for several samples; they vote, and their agreement is the confidence. When no tokens are left
the answer is forced from what the run already concluded, so every run ends with an answer and its
sources, and a run that could not ground its answer, or whose answer only names what the question
names, says it is unsure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import allocation, budget_line, call_id, select_evidence, trace
from leadline.agent.parsing import as_int_list, as_text, parse_json_object
from leadline.agent.prompts import (
    FACT_SCHEMA,
    VALUE_SCHEMA,
    YES_NO_SCHEMA,
    answer_messages,
    answer_schema,
    attribute_messages,
    entity_fact_messages,
    holds_messages,
    recheck_messages,
)
from leadline.agent.reader import (
    QuestionShape,
    compared_entities,
    date_order,
    echoes_question,
    entity_sources,
    named_phrases,
    normalize,
    pick_by_date,
    question_shape,
    rank_sources,
    same_attribute,
    snap_to_option,
    snap_to_source,
    supporting_sentence,
    trim_answer,
    unecho,
    values_agree,
)
from leadline.agent.state import Evidence, ResearchState
from leadline.errors import BudgetExceededError, ConfigError
from leadline.llm.base import Completion, GenerationParams, Message

ANSWER_TOKENS = 48
QUOTE_TOKENS = 64
"""Extra tokens the answer call may spend on the supporting sentence."""
FACT_TOKENS = 48
"""Tokens of each side's fact when the reader compares (``compare``)."""
VALUE_TOKENS = 16
"""Tokens of a side's value (``the same state``: the state's name)."""
VERDICT_TOKENS = 8
"""Tokens of a side's yes/no."""
COMPARE_TOKENS = 2 * (FACT_TOKENS + max(VALUE_TOKENS, VERDICT_TOKENS))
"""The most a comparison's side calls generate (two facts, two judgements); with fewer tokens left the
reader answers without them."""
NO_ANSWER = "No answer found within the budget."

Chat = Callable[[list[Message], GenerationParams], Awaitable[Completion]]


@dataclass(frozen=True, kw_only=True)
class ReaderOptions:
    """How the answer step reads its sources (chosen on train questions; docs/benchmarks.md)."""

    max_sources: int = 8
    """Sources shown to the answer call (the run's max_evidence caps it too)."""
    rank: bool = False
    """Rank sources by the words they share with the question and notes, not by search rank alone."""
    quote: bool = False
    """Ask for the supporting sentence before the answer."""
    snap: bool = False
    """Replace a paraphrased answer by the best-matching span of its quote or cited source."""
    trim: bool = False
    """Cut an answer of more than five words to its first clause."""
    shape: bool = False
    """Recognise yes/no and either-or questions and constrain the answer to their options."""
    terse: bool = False
    """Ask for the shortest phrase of the sources that answers (no qualifiers), not just "a few words"."""
    samples: int = 1
    """Samples that vote (at temperature 0.7) when the controller did not ask for more."""
    compare: bool = False
    """For a question that compares two things, first ask for each one's fact from its own sources and
    let the facts decide where they can (:func:`judge_pair`); the model answers over them otherwise."""
    unecho: bool = False
    """Cut a sentence answer that restates an open question to the words it adds (:func:`unecho`)."""
    recheck: bool = False
    """When the answer to an open question only names what the question names, ask once more (the
    reply kept in the conversation) and take the new answer if it names something else."""

    @classmethod
    def parse(cls, spec: str) -> ReaderOptions:
        """Options from a lever list such as ``k=4,rank,quote,snap,shape,samples=3`` (``baseline``: the
        reader before these levers: 8 sources in search order, a bare answer)."""
        opts: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            if key == "baseline":
                continue
            if key == "k" and value.isdigit():
                opts["max_sources"] = int(value)
            elif key == "samples" and value.isdigit():
                opts["samples"] = int(value)
            elif key in _SWITCHES and not value:
                opts[key] = True
            else:
                raise ConfigError(f"unknown reader lever {part!r} in {spec!r}")
        return cls(**opts)


_SWITCHES = ("rank", "quote", "snap", "shape", "trim", "terse", "compare", "unecho", "recheck")
"""The levers that are on or off."""

BASELINE_READER = ReaderOptions()
"""The reader before the levers: 8 sources in search order, a bare answer."""
DEFAULT_READER = ReaderOptions(trim=True, shape=True, compare=True)
"""Chosen on train questions (docs/benchmarks.md): long answers cut to their first clause, yes/no and
either-or questions answered as such, and decided from each compared thing's fact; fewer sources and
the quoted sentence lowered F1 and are off."""


@dataclass(frozen=True)
class ReaderAnswer:
    """What the reader concluded: the answer, the sources it cites, and how sure it is and why."""

    text: str
    cited: list[int]
    quote: str
    confidence: float | None
    basis: str
    """Where the confidence comes from, in words."""


def shown_sources(
    evidence: Sequence[Evidence], question: str, notes: Sequence[str], opts: ReaderOptions, limit: int
) -> list[Evidence]:
    """The sources the answer call sees."""
    k = min(limit, opts.max_sources)
    if opts.rank:
        return rank_sources(evidence, question, notes, k)
    return select_evidence(list(evidence), k)


def _vote(parsed: list[tuple[str, list[int], str]]) -> tuple[str, list[int], str, float]:
    counts = Counter(normalize(a) for a, _, _ in parsed if a)
    if not counts:
        return "", [], "", 0.0
    best, count = counts.most_common(1)[0]
    text, cited, quote = next((a, c, q) for a, c, q in parsed if normalize(a) == best)
    return text, cited, quote, count / len(parsed)


async def _ask(chat: Chat, messages: list[Message], schema: dict[str, Any], key: str, tokens: int) -> str:
    """One short side call's field ("" when no tokens are left for it or the reply has none)."""
    try:
        completion = await chat(messages, GenerationParams(max_tokens=tokens, json_schema=schema))
    except BudgetExceededError:
        return ""
    return as_text((parse_json_object(completion.text) or {}).get(key)).strip()


async def compare_facts(
    chat: Chat, question: str, shown: Sequence[Evidence], pair: tuple[str, str], *, max_chars: int
) -> tuple[str, str]:
    """Each compared thing's fact from the sources that name it ("" where none does, the model says it
    does not know, or no tokens are left for it)."""
    facts: list[str] = []
    for entity in pair:
        sources = entity_sources(shown, entity)
        messages = entity_fact_messages(question, entity, sources, max_chars=max_chars)
        fact = await _ask(chat, messages, FACT_SCHEMA, "fact", FACT_TOKENS) if sources else ""
        facts.append("" if normalize(fact) in ("", "unknown") else fact)
    return facts[0], facts[1]


async def judge_pair(
    chat: Chat, question: str, shape: QuestionShape, pair: tuple[str, str], facts: tuple[str, str]
) -> str | None:
    """The answer a comparison's two facts decide, or None to keep the model's own answer.

    An earlier/later question goes by the facts' years. A yes/no question that asks whether the two
    share something (``the same state``) compares each side's value in code; any other yes/no question
    is yes only when the question holds for each side, judged one fact at a time; an either-or question
    is the one option it holds for. Small models answer a yes/no question over two facts at once with
    "yes" almost always (docs/benchmarks.md); one fact at a time they judge well.
    """
    if not all(facts):
        return None
    if shape.kind == "choice" and date_order(question):
        return pick_by_date(question, pair, facts)
    attribute = same_attribute(question) if shape.kind == "yesno" else None
    if attribute:
        values = [
            await _ask(chat, attribute_messages(e, f, attribute), VALUE_SCHEMA, "value", VALUE_TOKENS)
            for e, f in zip(pair, facts, strict=True)
        ]
        agree = values_agree(values[0], values[1])
        return None if agree is None else ("yes" if agree else "no")
    holds = [
        normalize(await _ask(chat, holds_messages(question, e, f), YES_NO_SCHEMA, "answer", VERDICT_TOKENS))
        for e, f in zip(pair, facts, strict=True)
    ]
    if any(h not in ("yes", "no") for h in holds):
        return None
    if shape.kind == "yesno":
        return "yes" if all(h == "yes" for h in holds) else "no"
    chosen = [option for option, h in zip(pair, holds, strict=True) if h == "yes"]
    return chosen[0] if len(chosen) == 1 else None


async def read_answer(
    chat: Chat,
    question: str,
    shown: Sequence[Evidence],
    notes: Sequence[str],
    *,
    opts: ReaderOptions,
    max_chars: int,
    budget_line: str,
    samples: int = 1,
) -> ReaderAnswer:
    """Ask the model for the answer over ``shown`` and post-process it as ``opts`` says."""
    shape = question_shape(question) if opts.shape or opts.compare else None
    kind = shape.kind if shape and opts.shape else "open"
    options = shape.options if shape and opts.shape and shape.kind != "open" else ()
    pair = compared_entities(question, shape) if opts.compare and shape else None
    facts = await compare_facts(chat, question, shown, pair, max_chars=max_chars) if pair else ("", "")
    decided = await judge_pair(chat, question, shape, pair, facts) if pair and shape else None
    if any(facts):
        notes = [*notes, *(f for f in facts if f)]
    messages = answer_messages(
        question,
        shown,
        notes,
        max_chars=max_chars,
        budget_line=budget_line,
        quote=opts.quote,
        terse=opts.terse,
        kind=kind,
        options=options,
    )
    n = max(samples, opts.samples)
    params = GenerationParams(
        # per sample: every engine applies max_tokens to each of the n (the ledger grants n x max_tokens)
        max_tokens=ANSWER_TOKENS + (QUOTE_TOKENS if opts.quote else 0),
        json_schema=answer_schema(quote=opts.quote, options=options),
        n=n,
        temperature=0.7 if n > 1 else 0.0,
    )
    completion = await chat(messages, params)
    parsed: list[tuple[str, list[int], str]] = []
    for choice in completion.choices:
        fields = _reply_fields(choice.text)
        if fields is None:
            line = choice.text.strip().splitlines()[0] if choice.text.strip() else ""
            fields = (line.strip('"{} '), [], "")
        parsed.append(fields)
    text, cited, quote, agreement = _vote(parsed)
    text = _post_process(text, cited, quote, question, shown, shape, kind, opts)
    if (
        opts.recheck
        and n == 1
        and not decided
        and text
        and echoes_question(text, question)
        and (shape or question_shape(question)).kind == "open"
    ):
        again = await _recheck(chat, question, messages, completion.choices[0].text, text, params)
        if again is not None:  # its confidence, too, is the new reply's
            text, cited, completion = again
            quote = ""
            text = _post_process(text, cited, quote, question, shown, shape, kind, opts)
    if decided:  # the answer call still runs: its citations and confidence are the run's
        text = decided
    if n > 1:
        confidence: float | None = agreement
        basis = f"{round(agreement * n)} of {n} samples agree"
    else:
        lp = completion.choices[0].field_logprob("answer") if completion.choices else None
        confidence = None if lp is None else min(1.0, max(0.0, 2.718281828**lp))
        basis = "token probability" if lp is not None else ""
    return ReaderAnswer(text=text, cited=cited, quote=quote, confidence=confidence, basis=basis)


def _reply_fields(text: str) -> tuple[str, list[int], str] | None:
    """(answer, sources, quote) of an answer reply, or None when it is not a JSON object."""
    obj = parse_json_object(text)
    if obj is None:
        return None
    return as_text(obj.get("answer")), as_int_list(obj.get("sources", [])), as_text(obj.get("quote"))


def _post_process(
    text: str,
    cited: list[int],
    quote: str,
    question: str,
    shown: Sequence[Evidence],
    shape: QuestionShape | None,
    kind: str,
    opts: ReaderOptions,
) -> str:
    """The answer after the ``unecho``, ``trim`` and ``snap`` levers."""
    if text and opts.unecho and kind == "open":
        text = unecho(text, question)
    if text and opts.trim:
        text = trim_answer(text)
    if text and opts.snap:
        if shape is not None and kind != "open":
            text = snap_to_option(text, shape)
        else:
            by_n = {e["n"]: e for e in shown}
            texts = [quote] if quote else []
            texts += [by_n[c]["text"] for c in cited if c in by_n] or [e["text"] for e in shown]
            text = snap_to_source(text, texts, question)
    return text


async def _recheck(
    chat: Chat, question: str, messages: list[Message], reply: str, text: str, params: GenerationParams
) -> tuple[str, list[int], Completion] | None:
    """Ask again after an answer that echoes the question; the new (answer, sources, reply), or None when
    the tokens are spent, the reply is not JSON, or it still names only what the question names."""
    params = replace(params, json_schema=answer_schema(quote=False), n=1, temperature=0.0)
    try:
        completion = await chat(recheck_messages(messages, reply, text), params)
    except BudgetExceededError:
        return None
    fields = _reply_fields(completion.choices[0].text) if completion.choices else None
    if fields is None:
        return None
    answer, cited, _ = fields
    if not answer or echoes_question(answer, question) or normalize(answer) in ("yes", "no"):
        return None  # still the question's words, or a yes/no to a question that asks for something else
    return answer, cited, completion


def _citations(
    answer: str, cited: list[int], shown: list[Evidence], all_ev: list[Evidence], question: str = ""
) -> list[Evidence]:
    by_n = {e["n"]: e for e in all_ev}
    chosen = [by_n[n] for n in dict.fromkeys(cited) if n in by_n]
    needle = normalize(answer)
    if needle in ("yes", "no") and question:
        # a yes/no judgement compares what the question names: cite a source titled by each of them
        titles = {id(e): f" {normalize(e['title'])} " for e in [*shown, *chosen]}
        for name in filter(None, map(normalize, named_phrases(question))):
            if not any(f" {name} " in titles[id(e)] for e in chosen):
                chosen += [e for e in shown if f" {name} " in titles[id(e)]][:1]
    if chosen and needle and needle not in ("yes", "no") and not _grounded(answer, chosen):
        # the sources the model named do not contain its answer: put first the shown one that does
        holder = next((e for e in shown if _grounded(answer, [e])), None)
        return [holder, *[e for e in chosen if e is not holder]] if holder else chosen
    if chosen:
        return chosen
    # the model cited nothing usable: cite the shown source that contains the answer, else the best one
    if needle:
        for e in shown:
            if needle in normalize(e["text"]) or needle in normalize(e["title"]):
                return [e]
    return shown[:1]


def _grounded(answer: str, sources: Sequence[Evidence]) -> bool:
    """The answer's words appear, in order, in one of the sources (yes/no answers cannot)."""
    needle = normalize(answer)
    if not needle or needle in ("yes", "no"):
        return False
    return any(f" {needle} " in f" {normalize(e['title'] + ' ' + e['text'])} " for e in sources)


def _citation_dict(e: Evidence, answer: str, quote: str, question: str) -> dict[str, Any]:
    support = ""
    if quote and normalize(quote) and normalize(quote) in normalize(e["text"]):
        support = supporting_sentence(quote, e["text"], question) or quote
    if not support:
        support = supporting_sentence(answer, e["text"], question)
    return {
        "n": e["n"],
        "doc_id": e["doc_id"],
        "title": e["title"],
        "url": e["url"],
        "passage": e["text"],
        "support": support,
    }


def assess_support(
    answer: str,
    citations: list[dict[str, Any]],
    shown: Sequence[Evidence],
    forced: str | None,
    basis: str,
    question: str = "",
) -> tuple[bool, str]:
    """Whether the run is unsure, and the basis of its confidence in words. A yes/no answer to a
    question that asks for something else ("What is ...?" answered "Yes") is not an answer, nor is one
    that only names what the question names ("Jack" for Jack Binion's father): unsure."""
    if not answer or answer == NO_ANSWER:
        return True, "no answer was found"
    cited = [e for e in shown if e["n"] in {c["n"] for c in citations}]
    grounded = _grounded(answer, cited) or _grounded(answer, shown)
    reasons = []
    if basis:
        reasons.append(basis)
    yes_no = normalize(answer) in ("yes", "no")
    open_question = bool(question) and question_shape(question).kind == "open"
    if yes_no and open_question:
        reasons.append("a yes/no reply to a question that asks for something else")
        return True, "; ".join(reasons)
    if not yes_no and open_question and echoes_question(answer, question):
        reasons.append("the answer only names what the question names")
        return True, "; ".join(reasons)
    if yes_no:
        reasons.append("a yes/no judgement from the sources")
    elif grounded:
        where = ", ".join(f"[{c['n']}]" for c in citations if _grounded(answer, [_as_ev(c)]))
        reasons.append(f"the answer appears in source {where}" if where else "the answer appears in a source")
    else:
        reasons.append("the answer does not appear in the sources read")
    if forced:
        reasons.append(f"forced by the {forced} limit")
    unsure = bool(forced) or not (grounded or yes_no)
    return unsure, "; ".join(reasons)


def _as_ev(c: dict[str, Any]) -> Evidence:
    return Evidence(
        n=c["n"],
        doc_id=c["doc_id"],
        title=c["title"],
        url=c["url"],
        text=c["passage"],
        query="",
        score=0.0,
        rank=0,
    )


async def answer(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The answer node: a cited few-word answer from the shown sources (n samples vote in the parallel
    shape).
    """
    ctx = runtime.context
    opts = ctx.extra.get("reader", DEFAULT_READER)
    if opts.compare and ctx.ledger.tokens_left < COMPARE_TOKENS + ANSWER_TOKENS:
        opts = replace(opts, compare=False)  # the answer itself comes first
    alloc = allocation(state, ctx)
    shown = shown_sources(state["evidence"], state["question"], state["notes"], opts, ctx.max_evidence)
    samples = alloc.samples if alloc.shape == "parallel" else 1

    calls = 0

    async def chat(messages: list[Message], params: GenerationParams) -> Completion:
        nonlocal calls  # each call of the step its own record key (the compared facts come first)
        calls += 1
        return await ctx.llm.chat(call_id(state, "answer", calls - 1), "answer", messages, params)

    forced = state.get("forced")
    confidence: float | None = None
    basis, quote = "", ""
    try:
        got = await read_answer(
            chat,
            state["question"],
            shown,
            state["notes"],
            opts=opts,
            max_chars=ctx.evidence_chars,
            budget_line=budget_line(state, ctx),
            samples=samples,
        )
        text, cited, quote, confidence, basis = got.text, got.cited, got.quote, got.confidence, got.basis
    except BudgetExceededError:
        forced = forced or "tokens"
        text, cited = "", []
    overrun = ctx.ledger.overrun
    if overrun:  # a backend spent past its grant: the answer stands, marked as forced by that limit
        forced = forced or next(iter(overrun))
    if not text:
        candidate = (state.get("candidate") or {}).get("answer") or ""
        text = candidate or NO_ANSWER
        if candidate:
            basis = "the last intermediate answer (the answer step gave none)"
    citations = [
        _citation_dict(e, text, quote, state["question"])
        for e in _citations(text, cited, shown, state["evidence"], state["question"])
    ]
    unsure, basis = assess_support(text, citations, shown, forced, basis, state["question"])
    detail = text if not forced else f"{text} (forced: {forced} limit)"
    ctx.emit("answer", "answer", detail, state["step"])
    return {
        "answer": text,
        "confidence": confidence,
        "confidence_basis": basis,
        "unsure": unsure,
        "citations": citations,
        "forced": forced,
        "overrun": overrun,
        "step": state["step"] + 1,
        "trace": trace(state, "answer", "answer", detail),
    }


def route_after_answer(state: ResearchState) -> str:
    """The edge after answer: the report node in report mode, else the end."""
    return "report" if state["mode"] == "report" else "end"
