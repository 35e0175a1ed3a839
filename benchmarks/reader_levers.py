"""The reader's levers, one by one, on fixed retrieval: choose on train questions, confirm on dev.

Two steps. ``capture`` runs the research loop (fixed policy, 512 tokens x 3 searches) on a seeded sample
of train questions and stores, for each, what the answer step was given: the sources (their corpus ids,
ranks and scores; the text is read back from the demo corpus), the think notes, the budget line and the
tokens left. It writes them as small JSONL under ``benchmarks/data/`` so the lever table reproduces
without re-running retrieval. ``eval`` then runs only the answer step, once per reader variant, on those
same inputs, so a difference between variants is the reader's alone (the loop is deterministic:
temperature 0, seeded). Its calls are cut to the tokens the loop had left, as the loop's ledger cuts
them (captures made before the tokens left were recorded run uncapped).

    python benchmarks/reader_levers.py capture --n 50 --out benchmarks/data/reader_contexts.train.jsonl
    python benchmarks/reader_levers.py eval --contexts benchmarks/data/reader_contexts.train.jsonl \\
        --variants baseline,quote,snap,...
    python benchmarks/reader_levers.py compare BASE_CAPTURE OTHER_CAPTURE   # a change to the loop itself
    python benchmarks/reader_levers.py substitute --table AQ_LOG --contexts CAPTURE --lever EVAL_LOG \\
        --variant trim,shape,compare   # a lever that changes some questions, on a whole dev table
    python benchmarks/reader_levers.py paired --log EVAL_LOG --contexts CAPTURE --base loop   # ± figures
    python benchmarks/reader_levers.py shapes   # question_shape on every question, against the gold
    python benchmarks/reader_levers.py echo-ids --traces TRACES --split train > IDS   # or --table DEFAULT_ASK
    python benchmarks/reader_levers.py capture --ids IDS --controller auto --budget-tokens 1024 \\
        --budget-searches 4 --reader trim,shape,compare ...   # those questions as `ask` runs them

``substitute --table`` also reads ``default_ask.py``'s rows (the product's answers, no closed book).

Ends with one line of key=value figures (F1 per variant).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared_datasets import DATASETS

from leadline import Budget, Researcher, Settings
from leadline.agent.nodes.answer import (
    ANSWER_TOKENS,
    COMPARE_TOKENS,
    ReaderOptions,
    read_answer,
    shown_sources,
)
from leadline.agent.reader import content_words, echoes_question, normalize, question_shape
from leadline.agent.state import Evidence
from leadline.config import DEFAULT_MODEL
from leadline.errors import BudgetExceededError
from leadline.evals.datasets import load_questions, sample
from leadline.evals.metrics import exact_match, token_f1
from leadline.tools.demo import demo_corpus_path
from leadline.wiring import make_llm, make_search

nan = math.nan


def questions_path(split: str) -> Path:
    """The multi-hop questions of a split."""
    return DATASETS / "multihop" / f"questions.{split}.jsonl"


async def capture(args: argparse.Namespace) -> None:
    import leadline.agent.graph as graph_module
    from leadline.agent.nodes import answer as answer_module
    from leadline.agent.nodes import think as think_module
    from leadline.agent.nodes.common import budget_line

    captured: dict[str, Any] = {}
    real_answer = answer_module.answer

    async def recording_answer(state: Any, runtime: Any) -> dict[str, Any]:
        captured.clear()
        captured.update(
            evidence=[{k: v for k, v in e.items() if k != "text"} for e in state["evidence"]],
            notes=list(state["notes"]),
            budget_line=budget_line(state, runtime.context),
            forced=state.get("forced"),
            tokens_left=runtime.context.ledger.tokens_left,
        )
        return await real_answer(state, runtime)

    graph_module.answer = recording_answer  # type: ignore[attr-defined]
    answer_module.DEFAULT_READER = parse_variant(args.reader)
    think_module.BRIDGE = args.bridge
    if args.ids:  # only these questions (one id per line), in the file's order
        wanted = set(args.ids.read_text().split())
        items = [it for it in load_questions(args.questions) if it.id in wanted]
    else:
        items = sample(load_questions(args.questions), args.n, seed=args.seed)
    if args.shapes:  # only the questions of these shapes, from the same seeded sample
        shapes = set(args.shapes.split(","))
        items = [it for it in items if question_shape(it.question).kind in shapes]
    settings = Settings.from_env(home=args.home, model=args.model, seed=0)
    llm = make_llm(settings)
    search, reader = make_search(settings)
    factory = None
    if args.controller != "fixed":  # ``auto``: the controller ``ask`` runs by default
        from leadline.controller_choice import choose_controller

        factory = choose_controller(args.controller, None, settings).factory
    researcher = Researcher(settings, llm=llm, search=search, reader=reader, controller=factory)
    budget = Budget(tokens=args.budget_tokens, searches=args.budget_searches)
    rows = []
    try:
        for i, item in enumerate(items, 1):
            t0 = time.perf_counter()
            result = await researcher.aresearch(item.question, budget=budget)
            rows.append(
                {
                    "id": item.id,
                    "question": item.question,
                    "gold": list(item.answers),
                    "type": item.qtype,
                    "supporting": list(item.supporting_doc_ids),
                    "model": args.model,
                    "loop_answer": result.answer,
                    "loop_f1": token_f1(result.answer, item.answers),
                    "loop_em": exact_match(result.answer, item.answers),
                    "reader": args.reader,
                    "bridge": args.bridge,
                    "seconds": round(time.perf_counter() - t0, 2),
                    **captured,
                }
            )
            f1 = statistics.fmean(r["loop_f1"] for r in rows)
            print(f"  {i}/{len(items)} loop f1 {f1:.3f} ({rows[-1]['seconds']:.0f} s)", file=sys.stderr)
            args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    finally:
        await researcher.aclose()
        await llm.aclose()
    print(
        f"captured={len(rows)} loop_f1={statistics.fmean(r['loop_f1'] for r in rows):.3f} "
        f"loop_em={statistics.fmean(r['loop_em'] for r in rows):.3f} "
        f"seconds_per_q={statistics.fmean(r['seconds'] for r in rows):.1f} "
        f"reader={args.reader} bridge={args.bridge}"
    )


def load_texts(doc_ids: set[str]) -> dict[str, dict[str, str]]:
    """Title and text of the given passages of the packaged demo corpus."""
    found: dict[str, dict[str, str]] = {}
    with gzip.open(demo_corpus_path(), "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["id"] in doc_ids:
                found[row["id"]] = {"title": row["title"], "text": row["text"]}
    return found


def parse_variant(spec: str) -> ReaderOptions:
    return ReaderOptions.parse(spec)


async def evaluate(args: argparse.Namespace) -> None:
    """Every variant on every context; questions outer, variants inner, so consecutive calls share
    their sources' prefix (llama.cpp reuses it) and identical calls (a variant that differs only in
    post-processing, like ``snap``) are made once."""
    rows = [json.loads(line) for line in args.contexts.read_text().splitlines() if line.strip()]
    rows = rows[: args.n] if args.n else rows
    texts = load_texts({e["doc_id"] for r in rows for e in r["evidence"]})
    settings = Settings.from_env(home=args.home, model=args.model, seed=0)
    llm = make_llm(settings)
    variants = [v.strip() for v in args.variants.split(";") if v.strip()]
    options = {spec: parse_variant(spec) for spec in variants}
    log: list[dict[str, Any]] = []
    try:
        for i, r in enumerate(rows, 1):
            evidence = [Evidence(**{**e, **texts[e["doc_id"]]}) for e in r["evidence"]]  # type: ignore[typeddict-item]
            memo: dict[str, Any] = {}
            for spec, opts in options.items():
                shown = shown_sources(evidence, r["question"], r["notes"], opts, 8)
                usage: list[int] = []
                # the tokens the loop had left at its answer step (captures before it was recorded: no cap)
                left = [r.get("tokens_left")]
                if opts.compare and left[0] is not None and left[0] < COMPARE_TOKENS + ANSWER_TOKENS:
                    opts = replace(opts, compare=False)  # as the answer node does: the answer comes first

                async def chat(
                    messages: list[Any],
                    params: Any,
                    usage: list[int] = usage,
                    memo: dict[str, Any] = memo,
                    left: list[int | None] = left,
                ) -> Any:
                    if left[0] is not None:  # the loop's ledger cuts each call to what is left
                        if left[0] <= 0:
                            raise BudgetExceededError("token budget used up")
                        params = replace(params, max_tokens=min(params.max_tokens, left[0]))
                    key = json.dumps([[m.to_dict() for m in messages], repr(params)])
                    if key not in memo:
                        memo[key] = await llm.chat(messages, params)
                        usage.append(memo[key].usage.prompt_tokens)
                    if left[0] is not None:
                        left[0] -= memo[key].usage.completion_tokens
                    return memo[key]

                t0 = time.perf_counter()
                got = await read_answer(
                    chat,
                    r["question"],
                    shown,
                    r["notes"],
                    opts=opts,
                    max_chars=700,
                    budget_line=r["budget_line"],
                )
                gold_shown = len({e["doc_id"] for e in shown} & set(r["supporting"])) / max(
                    1, len(r["supporting"])
                )
                log.append(
                    {
                        "variant": spec,
                        "model": args.model,
                        "id": r["id"],
                        "type": r["type"],
                        "gold": r["gold"],
                        "answer": got.text,
                        "quote": got.quote,
                        "f1": token_f1(got.text, r["gold"]),
                        "em": exact_match(got.text, r["gold"]),
                        "gold_shown": gold_shown,
                        "seconds": round(time.perf_counter() - t0, 2),
                        "prompt_tokens": sum(usage),
                    }
                )
            line = " ".join(
                f"{spec}={statistics.fmean(x['f1'] for x in log if x['variant'] == spec):.3f}"
                for spec in variants
            )
            print(f"  {i}/{len(rows)} f1 {line}", file=sys.stderr, flush=True)
            if args.log:
                with args.log.open("a") as fh:
                    fh.write("".join(json.dumps(x) + "\n" for x in log[-len(variants) :]))
    finally:
        await llm.aclose()
    print("| model | reader variant | n | EM | F1 | gold passages shown | prompt tokens/q | s/q |")
    print("|---|---|---|---|---|---|---|---|")
    summary: dict[str, float] = {}
    for spec in variants:
        mine = [x for x in log if x["variant"] == spec]
        summary[spec] = statistics.fmean(x["f1"] for x in mine)
        print(
            f"| {args.model} | {spec} | {len(mine)} | {statistics.fmean(x['em'] for x in mine):.3f} | "
            f"{summary[spec]:.3f} | {statistics.fmean(x['gold_shown'] for x in mine):.3f} | "
            f"{statistics.fmean(x['prompt_tokens'] for x in mine):.0f} | "
            f"{statistics.fmean(x['seconds'] for x in mine):.1f} |"
        )
    print(" ".join(f"f1[{k}]={v:.3f}" for k, v in summary.items()) + f" model={args.model} n={len(rows)}")


def compare(args: argparse.Namespace) -> None:
    """The whole loop with one change against without it, on the questions both captures hold (paired)."""
    base = {r["id"]: r for r in map(json.loads, args.base.read_text().splitlines())}
    other = [r for r in map(json.loads, args.other.read_text().splitlines()) if r["id"] in base]
    if len(other) < 2:
        raise SystemExit("fewer than two questions in common")
    d_f1, se, better, worse = paired_change(
        [base[r["id"]]["loop_f1"] for r in other], [r["loop_f1"] for r in other]
    )

    def mean(key: str, rows: list[dict[str, Any]]) -> float:
        return statistics.fmean(r[key] for r in rows)

    mine = [base[r["id"]] for r in other]
    for name, rows in (("base", mine), ("other", other)):
        print(f"{name}: F1 {mean('loop_f1', rows):.3f} EM {mean('loop_em', rows):.3f} "
              f"{mean('seconds', rows):.1f} s a question")  # fmt: skip
    print(f"paired F1 {d_f1:+.3f} ± {se:.3f}; better {better}, worse {worse}")
    print(f"n={len(other)} d_f1={d_f1:.4f} d_f1_se={se:.4f}")


def paired_change(base: list[float], other: list[float]) -> tuple[float, float, int, int]:
    """Mean of ``other - base`` per question, its standard error, and how many got better and worse."""
    diff = [o - b for b, o in zip(base, other, strict=True)]
    se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else nan
    return statistics.fmean(diff), se, sum(d > 0 for d in diff), sum(d < 0 for d in diff)


def paired(args: argparse.Namespace) -> None:
    """The paired figures of a lever table, from the committed files alone: each variant of an ``eval``
    log against a base variant of the same log, or against ``loop`` (the capture's own answers)."""
    log = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    by_variant: dict[str, dict[str, dict[str, Any]]] = {}
    for row in log:
        by_variant.setdefault(row["variant"], {})[row["id"]] = row
    if args.contexts:
        by_variant["loop"] = {
            r["id"]: {"f1": r["loop_f1"], "em": r["loop_em"]}
            for r in map(json.loads, args.contexts.read_text().splitlines())
            if r
        }
    if args.base not in by_variant:
        raise SystemExit(f"no variant {args.base!r} in the log (loop needs --contexts): {sorted(by_variant)}")
    base = by_variant[args.base]
    others = [v for v in by_variant if v != args.base] if not args.other else args.other
    print(
        f"| against `{args.base}` | n | EM | F1 | paired F1 change ± s.e. | paired EM change "
        "| better / worse |"
    )
    print("|---|---|---|---|---|---|---|")
    figures: list[str] = []
    for name in others:
        if name not in by_variant:
            raise SystemExit(f"no variant {name!r} in the log: {sorted(by_variant)}")
        ids = [i for i in by_variant[name] if i in base]
        mine = [by_variant[name][i] for i in ids]
        theirs = [base[i] for i in ids]
        d_f1, se, better, worse = paired_change([r["f1"] for r in theirs], [r["f1"] for r in mine])
        d_em = statistics.fmean(r["em"] for r in mine) - statistics.fmean(r["em"] for r in theirs)
        print(
            f"| `{name}` | {len(ids)} | {statistics.fmean(r['em'] for r in mine):.3f} | "
            f"{statistics.fmean(r['f1'] for r in mine):.3f} | {d_f1:+.3f} ± {se:.3f} | {d_em:+.3f} | "
            f"{better} / {worse} |"
        )
        figures.append(f"d_f1[{name}]={d_f1:.4f} d_f1_se[{name}]={se:.4f}")
    print(" ".join(figures) + f" base={args.base}")


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of an answer-quality table, or of ``default_ask.py``'s (``question_id``, ``f1``, ``em``:
    the product's answers, no closed book), in the answer-quality table's keys."""
    if "question_id" in row:
        return {**row, "id": row["question_id"], "f1_research": row["f1"], "em_research": row["em"]}
    return row


def substitute(args: argparse.Namespace) -> None:
    """A reader lever that changes only some questions (``compare``: the comparison questions), measured
    on a whole answer-quality table: the lever's answers (``eval --log``) over the loop's own answers
    on the same captured sources (paired), then the table's figures with the lever's answers in place
    of the table's on the questions it covers."""
    table = [_table_row(json.loads(line)) for line in args.table.read_text().splitlines() if line.strip()]
    # a default_ask table holds one setting's rows per question: keep those with no λ given (``ask``'s)
    table = [r for r in table if r.get("search_cost_setting") is None]
    loop = {r["id"]: r for r in map(json.loads, args.contexts.read_text().splitlines()) if r}
    lever = {
        r["id"]: r
        for r in map(json.loads, args.lever.read_text().splitlines())
        if r and r["variant"] == args.variant and r["id"] in loop
    }
    covered = [r for r in table if r["id"] in lever]
    if not covered:
        raise SystemExit("the lever's log covers none of the table's questions")

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    d_f1, se, better, worse = paired_change(
        [loop[r["id"]]["loop_f1"] for r in covered], [lever[r["id"]]["f1"] for r in covered]
    )
    d_em = mean([lever[r["id"]]["em"] - loop[r["id"]]["loop_em"] for r in covered])
    print(f"covered: {len(covered)} of {len(table)} questions")
    print("| answers on the covered questions | EM | F1 |")
    print("|---|---|---|")
    for name, em, f1 in (
        ("the table's research answers", [r["em_research"] for r in covered],
         [r["f1_research"] for r in covered]),
        ("the loop on the fresh capture", [loop[r["id"]]["loop_em"] for r in covered],
         [loop[r["id"]]["loop_f1"] for r in covered]),
        (f"`{args.variant}` on the same sources", [lever[r["id"]]["em"] for r in covered],
         [lever[r["id"]]["f1"] for r in covered]),
        ("closed book (the table's)", [r.get("em_closed", nan) for r in covered],
         [r.get("f1_closed", nan) for r in covered]),
    ):  # fmt: skip
        if not all(map(math.isnan, f1)):
            print(f"| {name} | {mean(em):.3f} | {mean(f1):.3f} |")
    print(
        f"paired against the loop on the same sources: F1 {d_f1:+.3f} ± {se:.3f}, EM {d_em:+.3f}; "
        f"better {better}, worse {worse}"
    )
    f1 = [lever[r["id"]]["f1"] if r["id"] in lever else r["f1_research"] for r in table]
    em = [lever[r["id"]]["em"] if r["id"] in lever else r["em_research"] for r in table]
    f1_closed = mean([r.get("f1_closed", nan) for r in table])
    print(
        f"n={len(table)} covered={len(covered)} f1_research={mean(f1):.3f} em_research={mean(em):.3f} "
        f"f1_closed={f1_closed:.3f} research_over_closed={mean(f1) / f1_closed:.3f} "
        f"d_f1_covered={d_f1:.4f} d_f1_covered_se={se:.4f} d_em_covered={d_em:.4f}"
    )


def shapes(args: argparse.Namespace) -> None:
    """How well :func:`question_shape` reads each split: its counts, the yes/no questions whose gold (the
    first answer) is yes or no (and the others whose gold is), and the either-or questions one of whose
    options is the gold (token F1 at least 0.5), with the ones that are not listed."""
    figures: list[str] = []
    for split in args.splits:
        items = load_questions(questions_path(split))
        kinds: dict[str, int] = {}
        yesno_gold = other_yesno = choice_gold = 0
        missed: list[str] = []
        for it in items:
            shape = question_shape(it.question)
            kinds[shape.kind] = kinds.get(shape.kind, 0) + 1
            says_yes_no = normalize(it.answers[0]) in ("yes", "no")  # the first: "NO" is Norway's alias
            if shape.kind == "yesno":
                yesno_gold += says_yes_no
            else:
                other_yesno += says_yes_no
            if shape.kind == "choice":
                if max(token_f1(o, it.answers) for o in shape.options) >= 0.5:
                    choice_gold += 1
                else:
                    missed.append(f"  {it.id}: {shape.options} | gold {it.answers[0][:60]!r}")
        print(
            f"{split}: {len(items)} questions, {kinds.get('open', 0)} open, {kinds.get('yesno', 0)} yes/no "
            f"({yesno_gold} with a yes/no gold; other questions with one: {other_yesno}), "
            f"{kinds.get('choice', 0)} either-or ({choice_gold} with the gold among the options)"
        )
        if missed:
            print("\n".join(missed))
        figures.append(
            f"{split}_yesno={kinds.get('yesno', 0)} {split}_yesno_gold={yesno_gold} "
            f"{split}_other_yesno_gold={other_yesno} {split}_choice={kinds.get('choice', 0)} "
            f"{split}_choice_gold_in_options={choice_gold}"
        )
    print(" ".join(figures))


def echo_ids(args: argparse.Namespace) -> None:
    """The open questions whose answer echoes the question (:func:`echoes_question`): with ``--traces``,
    those of ``--split`` where any step's probe does (train: where the levers are chosen); with
    ``--table`` (``default_ask.py``'s rows, no λ given), those whose answer echoes the question or shares
    two words that carry meaning with it (a restatement ``unecho`` may cut; dev: the confirmation)."""
    from leadline.evals.traces import read_traces

    if args.traces:
        for t in read_traces(args.traces).traces:
            echoes = any(s.probe.answer and echoes_question(s.probe.answer, t.question) for s in t.steps)
            if t.split == args.split and question_shape(t.question).kind == "open" and echoes:
                print(t.question_id)
        return
    questions = {q.id: q.question for q in load_questions(questions_path(args.split))}
    for row in map(json.loads, args.table.read_text().splitlines()):
        q = questions.get(row["question_id"])
        if q is None or row.get("search_cost_setting") is not None or question_shape(q).kind != "open":
            continue
        if echoes_question(row["answer"], q) or len(content_words(row["answer"]) & content_words(q)) >= 2:
            print(row["question_id"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("--questions", type=Path, default=questions_path("train"))
    cap.add_argument("--n", type=int, default=50)
    cap.add_argument("--seed", type=int, default=0)
    cap.add_argument("--model", default=DEFAULT_MODEL)
    cap.add_argument("--budget-tokens", type=int, default=512)
    cap.add_argument("--budget-searches", type=int, default=3)
    cap.add_argument("--home", type=Path, required=True, help="leadline home (model cache, run database)")
    cap.add_argument("--out", type=Path, required=True)
    cap.add_argument("--reader", default="baseline", help="reader variant of the loop's answer step")
    cap.add_argument("--bridge", action="store_true", help="think names the bridge entity and searches it")
    cap.add_argument("--controller", default="fixed", help="fixed, or auto (as `ask` runs by default)")
    cap.add_argument("--ids", type=Path, default=None, help="a file of question ids: capture only these")
    cap.add_argument("--shapes", default="", help="keep only these question shapes (open,yesno,choice)")
    ev = sub.add_parser("eval")
    ev.add_argument("--contexts", type=Path, required=True)
    ev.add_argument("--variants", default="baseline", help="reader variants separated by ';'")
    ev.add_argument("--model", default=DEFAULT_MODEL)
    ev.add_argument("--n", type=int, default=0, help="first n contexts only (0: all)")
    ev.add_argument("--home", type=Path, required=True)
    ev.add_argument("--log", type=Path, default=None, help="append per-question JSONL here")
    cmp = sub.add_parser("compare", help="paired loop F1/EM of two captures (e.g. with and without --bridge)")
    cmp.add_argument("base", type=Path)
    cmp.add_argument("other", type=Path)
    put = sub.add_parser(
        "substitute", help="a lever that changes some questions, on a whole answer-quality table"
    )
    put.add_argument(
        "--table", type=Path, required=True, help="answer_quality.py progress log (per question)"
    )
    put.add_argument("--contexts", type=Path, required=True, help="the capture the lever was evaluated on")
    put.add_argument("--lever", type=Path, required=True, help="eval --log of the lever")
    put.add_argument("--variant", required=True)
    par = sub.add_parser("paired", help="paired changes of an eval log's variants, from the committed files")
    par.add_argument("--log", type=Path, required=True, help="eval --log of the variants")
    par.add_argument("--base", default="loop", help="a variant of the log, or loop (needs --contexts)")
    par.add_argument("--contexts", type=Path, default=None, help="the capture the log was evaluated on")
    par.add_argument("--other", action="append", default=[], help="variants to compare (default: all)")
    shp = sub.add_parser("shapes", help="how question_shape reads each split, checked against the gold")
    shp.add_argument("--splits", nargs="+", default=["train", "dev"])
    ech = sub.add_parser(
        "echo-ids", help="ids of the questions the echo levers (unecho, recheck) can change, one a line"
    )
    ech.add_argument("--traces", type=Path, help="traces file: questions a probe of which echoes")
    ech.add_argument("--table", type=Path, help="default_ask.py rows: answers that echo or restate")
    ech.add_argument("--split", default="train")
    args = parser.parse_args()
    if args.command in ("capture", "eval"):  # the two that run the model
        asyncio.run(capture(args) if args.command == "capture" else evaluate(args))
        return
    commands = {
        "compare": compare,
        "substitute": substitute,
        "paired": paired,
        "shapes": shapes,
        "echo-ids": echo_ids,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
