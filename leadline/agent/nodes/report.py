"""report: a Markdown report whose every claim cites a source that says it (report mode).

The model lists findings as short claims, each with one source number. Each claim is checked against
the passage it cites (:func:`~leadline.agent.reader.supported`): a claim its source does not support
is replaced by that source's sentence closest to it, or dropped. When the sources do not cover the
question (its names appear in none of them, or the answer is not grounded) the report says so plainly
instead of writing about something else.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import budget_line, call_id, select_evidence, tokens_left, trace
from leadline.agent.parsing import as_text, parse_json_object
from leadline.agent.prompts import REPORT_SCHEMA, report_messages
from leadline.agent.reader import claim_support, named_phrases, sentences, supported, uncovered_names
from leadline.agent.state import Evidence, ResearchState
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams
from leadline.tools.untrusted import strip_remote_images

REPORT_TOKENS = 400


def sources_section(state: ResearchState) -> str:
    """The report's numbered list of the sources the run read."""
    lines = ["## Sources", ""]
    for e in state["evidence"]:
        where = f" — {e['url']}" if e["url"] else f" ({e['doc_id']})"
        lines.append(f"[{e['n']}] {e['title']}{where}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(strip_remote_images(text).replace("[", "(").replace("]", ")").split())


def checked_findings(
    raw: list[tuple[str, int]], evidence: list[Evidence]
) -> tuple[list[tuple[str, int]], int]:
    """Claims whose cited passage supports them; an unsupported claim becomes its source's sentence
    that holds most of its words (at least half), else it is dropped. Returns the findings
    and how many of the model's claims were supported as written."""
    by_n = {e["n"]: e for e in evidence}
    kept: list[tuple[str, int]] = []
    as_written = 0
    seen: set[str] = set()
    for claim, n in raw:
        claim = _one_line(claim).rstrip(".") + "."
        e = by_n.get(n)
        if e is None or len(claim) < 8:
            continue
        if supported(claim, e["text"] + " " + e["title"]):
            as_written += 1
        else:
            best = max(sentences(e["text"]), key=lambda s: claim_support(claim, s), default="")
            if not best or claim_support(claim, best) < 0.5:
                continue
            claim = _one_line(best)
        if claim.lower() not in seen:
            seen.add(claim.lower())
            kept.append((claim, n))
    return kept, as_written


def compose(
    question: str,
    answer: str,
    answer_cites: list[int],
    findings: list[tuple[str, int]],
    open_question: str,
    missing: list[str],
    unsure: bool,
    sources: str,
) -> str:
    """The report's Markdown: answer, summary, findings (each with its [n]), open questions, sources."""
    cites = "".join(f"[{n}]" for n in answer_cites)
    lines = [f"# {question}", ""]
    if missing:
        names = ", ".join(missing)
        lines += [
            "## Summary",
            "",
            f"The sources found do not cover this question: none of them mentions {names}. "
            "This report does not answer it; try another corpus or a web search.",
            "",
        ]
    elif unsure:  # an answer its cited source confirms is stated even when no other claim survived
        lines += [
            "## Summary",
            "",
            "The sources found do not clearly answer this question. "
            f"Best guess, not confirmed by any source: {answer}.",
            "",
        ]
    else:
        lines += ["## Summary", "", f"**Answer:** {answer} {cites}".rstrip(), ""]
    if findings and not missing:
        lines += ["## Findings", ""] + [f"- {claim} [{n}]" for claim, n in findings] + [""]
    lines += ["## Open questions", ""]
    if missing:
        lines.append(f"- What the sources say about {', '.join(missing)} (none was found).")
    elif open_question:
        lines.append(f"- {_one_line(open_question)}")
    else:
        lines.append("- None named.")
    return "\n".join(lines) + f"\n\n{sources}\n"


async def report(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The report node: a long-form Markdown report with citations, and its sources section."""
    ctx = runtime.context
    shown = select_evidence(state["evidence"], ctx.max_evidence)
    answer = state.get("answer", "")
    texts = [e["title"] + " " + e["text"] for e in state["evidence"]]
    names = named_phrases(state["question"])
    unmentioned = uncovered_names(state["question"], texts)
    # not covered: the sources mention none of the names the question asks about
    missing = unmentioned if names and len(unmentioned) == len(names) else []
    raw: list[tuple[str, int]] = []
    open_question = ""
    if not missing and tokens_left(state, ctx) > 32:
        messages = report_messages(
            state["question"],
            shown,
            state["notes"],
            answer,
            max_chars=ctx.evidence_chars,
            budget_line=budget_line(state, ctx),
        )
        try:
            completion = await ctx.llm.chat(
                call_id(state, "report"),
                "report",
                messages,
                GenerationParams(
                    max_tokens=min(REPORT_TOKENS, tokens_left(state, ctx)), json_schema=REPORT_SCHEMA
                ),
            )
            parsed = parse_json_object(completion.text) or {}
            for item in parsed.get("findings") or []:
                if isinstance(item, dict):
                    try:
                        raw.append((as_text(item.get("claim")), int(item.get("source", 0))))
                    except (TypeError, ValueError):
                        continue
            open_question = as_text(parsed.get("open_question"))
        except BudgetExceededError:
            raw = []
    findings, as_written = checked_findings(raw, state["evidence"])
    cites = [int(c["n"]) for c in state.get("citations") or []][:2]
    text = compose(
        state["question"],
        answer,
        cites,
        findings,
        open_question,
        missing,
        bool(state.get("unsure")),
        sources_section(state),
    )
    detail = f"{len(findings)} findings ({as_written} of {len(raw)} claims supported as written)"
    ctx.emit("report", "report", detail, state["step"])
    update: dict[str, Any] = {
        "report": text,
        "step": state["step"] + 1,
        "trace": trace(state, "report", "report", detail),
    }
    overrun = ctx.ledger.overrun
    if overrun:  # the report call spent past its grant: the result says so
        update["overrun"] = overrun
        update["forced"] = state.get("forced") or next(iter(overrun))
    return update
