"""answer: the final short answer with numbered citations to sources the run actually read.

With a parallel shape the controller asked for several samples; they vote, and their agreement is the
confidence. When no tokens are left the answer is forced from what the run already concluded, so every
run ends with an answer and its sources.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import allocation, budget_line, call_id, select_evidence, trace
from leadline.agent.parsing import as_int_list, as_text, parse_json_object
from leadline.agent.prompts import ANSWER_SCHEMA, answer_messages
from leadline.agent.state import Evidence, ResearchState
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams

ANSWER_TOKENS = 48
NO_ANSWER = "No answer found within the budget."


def _norm(text: str) -> str:
    text = re.sub(r"\b(a|an|the)\b", " ", text.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _citations(
    answer: str, cited: list[int], shown: list[Evidence], all_ev: list[Evidence]
) -> list[Evidence]:
    by_n = {e["n"]: e for e in all_ev}
    chosen = [by_n[n] for n in dict.fromkeys(cited) if n in by_n]
    if chosen:
        return chosen
    # the model cited nothing usable: cite the shown source that contains the answer, else the best one
    needle = _norm(answer)
    if needle:
        for e in shown:
            if needle in _norm(e["text"]) or needle in _norm(e["title"]):
                return [e]
    return shown[:1]


def _citation_dict(e: Evidence) -> dict[str, Any]:
    return {"n": e["n"], "doc_id": e["doc_id"], "title": e["title"], "url": e["url"], "passage": e["text"]}


async def answer(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The answer node: a cited few-word answer from the shown sources (n samples vote in the parallel
    shape).
    """
    ctx = runtime.context
    alloc = allocation(state, ctx)
    shown = select_evidence(state["evidence"], ctx.max_evidence)
    messages = answer_messages(
        state["question"],
        shown,
        state["notes"],
        max_chars=ctx.evidence_chars,
        budget_line=budget_line(state, ctx),
    )
    samples = alloc.samples if alloc.shape == "parallel" else 1
    params = GenerationParams(
        max_tokens=ANSWER_TOKENS,  # per sample: every engine applies max_tokens to each of the n
        json_schema=ANSWER_SCHEMA,
        n=samples,
        temperature=0.7 if samples > 1 else 0.0,
    )
    forced = state.get("forced")
    confidence: float | None = None
    try:
        completion = await ctx.llm.chat(call_id(state, "answer"), "answer", messages, params)
        votes: list[tuple[str, list[int]]] = []
        for choice in completion.choices:
            parsed = parse_json_object(choice.text)
            if parsed is None:
                text = choice.text.strip().splitlines()[0] if choice.text.strip() else ""
                votes.append((text.strip('"{} '), []))
            else:
                votes.append((as_text(parsed.get("answer")), as_int_list(parsed.get("sources", []))))
        counts = Counter(_norm(a) for a, _ in votes if a)
        if counts:
            best, count = counts.most_common(1)[0]
            text, cited = next((a, c) for a, c in votes if _norm(a) == best)
            confidence = count / len(votes)
            lp = completion.choices[0].mean_logprob
            if samples == 1 and lp is not None:
                confidence = min(1.0, max(0.0, 2.718281828**lp))
        else:
            text, cited = "", []
    except BudgetExceededError:
        forced = forced or "tokens"
        text, cited = "", []
    overrun = ctx.ledger.overrun
    if overrun:  # a backend spent past its grant: the answer stands, marked as forced by that limit
        forced = forced or next(iter(overrun))
    if not text:
        candidate = (state.get("candidate") or {}).get("answer") or ""
        text = candidate or NO_ANSWER
    citations = [_citation_dict(e) for e in _citations(text, cited, shown, state["evidence"])]
    detail = text if not forced else f"{text} (forced: {forced} limit)"
    ctx.emit("answer", "answer", detail, state["step"])
    return {
        "answer": text,
        "confidence": confidence,
        "citations": citations,
        "forced": forced,
        "overrun": overrun,
        "step": state["step"] + 1,
        "trace": trace(state, "answer", "answer", detail),
    }


def route_after_answer(state: ResearchState) -> str:
    """The edge after answer: the report node in report mode, else the end."""
    return "report" if state["mode"] == "report" else "end"
