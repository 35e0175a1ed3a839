"""report: a long-form Markdown report with sections and numbered citations (report mode)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from leadline.agent.context import RunContext
from leadline.agent.nodes.common import budget_line, call_id, select_evidence, tokens_left, trace
from leadline.agent.prompts import report_messages
from leadline.agent.state import ResearchState
from leadline.errors import BudgetExceededError
from leadline.llm.base import GenerationParams
from leadline.tools.untrusted import strip_remote_images

REPORT_TOKENS = 600


def sources_section(state: ResearchState) -> str:
    """The report's numbered list of the sources the run read."""
    lines = ["## Sources", ""]
    for e in state["evidence"]:
        where = f" — {e['url']}" if e["url"] else f" ({e['doc_id']})"
        lines.append(f"[{e['n']}] {e['title']}{where}")
    return "\n".join(lines)


async def report(state: ResearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The report node: a long-form Markdown report with citations, and its sources section."""
    ctx = runtime.context
    shown = select_evidence(state["evidence"], ctx.max_evidence)
    answer = state.get("answer", "")
    body = ""
    if tokens_left(state, ctx) > 32:
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
                GenerationParams(max_tokens=min(REPORT_TOKENS, tokens_left(state, ctx))),
            )
            body = strip_remote_images(completion.text).strip()
        except BudgetExceededError:
            body = ""
    if not body:  # no tokens for prose: the report still states the answer and what was found
        findings = "\n".join(f"- {n}" for n in state["notes"]) or "- (no notes)"
        body = f"## Summary\n\n{answer}\n\n## Findings\n\n{findings}"
    text = f"# {state['question']}\n\n**Answer:** {answer}\n\n{body}\n\n{sources_section(state)}\n"
    ctx.emit("report", "report", f"{len(text)} characters", state["step"])
    update: dict[str, Any] = {
        "report": text,
        "step": state["step"] + 1,
        "trace": trace(state, "report", "report"),
    }
    overrun = ctx.ledger.overrun
    if overrun:  # the report call spent past its grant: the result says so
        update["overrun"] = overrun
        update["forced"] = state.get("forced") or next(iter(overrun))
    return update
