"""How a run's searches are made: backfilled or not, how many sources each brings, whether it follows links.

Two questions, each answered by running the product twice per question in one process, one run per arm
(the arm that runs first alternates by question), on traced questions evenly spaced through a split:

- **Backfill** (``--arms top-k backfill``): without it a search keeps only the new sources among its
  query's own top ``k``; on the committed traces of the default 1.5B model, 13–29 % of the searches after
  the first brought no new source at all, because the plan's queries restate the question. With it
  (``leadline.agent.nodes.search.BACKFILL``) the search asks the backend for as many more results as the
  run has read and keeps the first ``k`` it has not read. Both arms run the default ``ask``: the embedded
  default model, the demo index, ``ask``'s budget (1,024 tokens, 4 searches), the default controller.
- **Depth** (``--arms one-k5 one-k8``): one search and the answer (the best fixed budget on the dev
  traces), the search bringing 5 or 8 sources (``Researcher(search_k=...)``; the answer step shows up to
  8). On the demo index the question's own top 8 hold every gold passage of 43 % of train and 70 % of dev
  questions, against 33 % and 59 % for its top 5.

- **Links** (``--arms one-k5 one-links``, ``one-link1``; ``--arms top-k links`` under ``ask``): the search
  also brings up to 2 (1) passages its results link to (``Researcher(search_links=...)``; a passage links
  to the passages whose titles it names). ``top-k-again`` is ``top-k`` run once more, for the noise of a
  re-run; ``--like ARM`` runs an arm on the questions ``ARM`` ran (a new arm against earlier rows).
  ``top-k-pinned`` and ``links-pinned`` are ``top-k`` and ``links`` with λ pinned (``PINNED_LAMBDA``), so
  both arms price a search alike. Every arm above reads a linked passage after the search's own results;
  ``links-top-pinned`` reads one that the search's top result links to at rank 2 (the product's rule:
  ``leadline.agent.nodes.search.LINKED_FROM_TOP_RANK``), so that it reaches the answer's 8 sources in a
  run of several searches.

Each arm is scored on F1, exact match, the share of the gold passages among the sources the run read,
the runs whose sources hold every gold passage, steps and seconds.

    python benchmarks/search_arms.py record --arms top-k backfill --split train --limit 14 --home DIR
    python benchmarks/search_arms.py --arms top-k backfill [--split train]        # the comparison
    python benchmarks/search_arms.py --gold-at 5 8 --split dev --home DIR           # the top-k figures
    python benchmarks/search_arms.py --gold-at 5 7 --links 1 2 --split dev --home DIR  # and with links
    python benchmarks/search_arms.py record --arms top-k links --split dev --like top-k --home DIR

``record`` is resumable and appends one row per (question, arm) to
``benchmarks/data/search_arms.MODEL.jsonl``. Ends with one line of key=value figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_datasets import DATASETS
from traced_runs import arguments, mean_se, read_rows

from leadline import Budget, Researcher, Settings
from leadline.agent.nodes import search as search_node
from leadline.controller_choice import choose_controller
from leadline.evals.datasets import load_questions
from leadline.evals.metrics import exact_match, token_f1
from leadline.evals.traces import read_traces
from leadline.tools.corpus_index import resolve_corpus

DATA = Path(__file__).parent / "data"
ASK = Budget(tokens=1024, searches=4)
"""``ask``'s default budget (its CLI defaults)."""
ONE_SEARCH = Budget(tokens=1024, searches=1, thinks=0)
"""One search and the answer (``--budget-searches 1 --budget-thinks 0``)."""
PINNED_LAMBDA = 42.0
"""λ for the ``-pinned`` arms. Left to itself a run measures λ from the store's earlier runs, so arms run
one after the other price a search differently (the dev ``top-k`` rows averaged 3.00 searches,
``top-k-again`` 1.64). 42 tokens is what a fresh home measured on this CPU for the 1.5B default after four
``ask`` runs and three one-search runs: a search adds about 485 prompt tokens, read at 105 tokens/s while
decoding runs at 9.1 tokens/s. Each row records the λ its budget pinned (``search_cost``; None: measured)."""
ASK_PINNED = Budget(tokens=1024, searches=4, search_cost_tokens=PINNED_LAMBDA)


@dataclass(frozen=True)
class Arm:
    """How one arm runs: the budget, the sources a search brings, whether searches are backfilled."""

    budget: Budget
    k: int
    backfill: bool
    links: int = 0
    top_rank: int | None = None
    """The rank a passage the top result links to is read at (``search.LINKED_FROM_TOP_RANK``); the
    arms recorded before it existed read every linked passage after the search's own (None)."""


ARMS = {
    "top-k": Arm(ASK, 5, False),
    "backfill": Arm(ASK, 5, True),
    "links": Arm(ASK, 5, False, 2),
    "top-k-again": Arm(ASK, 5, False),
    "one-k5": Arm(ONE_SEARCH, 5, True),
    "one-k8": Arm(ONE_SEARCH, 8, True),
    "one-links": Arm(ONE_SEARCH, 5, True, 2),
    "one-link1": Arm(ONE_SEARCH, 5, True, 1),
    "top-k-pinned": Arm(ASK_PINNED, 5, False),
    "links-pinned": Arm(ASK_PINNED, 5, False, 2),
    "links-top-pinned": Arm(ASK_PINNED, 5, False, 2, top_rank=2),
}


def _out(model: str) -> Path:
    return DATA / f"search_arms.{model}.jsonl"


async def record(
    model: str, split: str, limit: int, home: str | None, arms: list[str], like: str | None = None
) -> None:
    """Run the product with each arm on ``limit`` traced questions of ``split``, evenly spaced, or with
    ``like`` on the questions that arm has run (a new arm against rows recorded before)."""
    out = _out(model)
    done = {(r["question_id"], r["arm"]) for r in read_rows(out)}
    traced = [t for t in read_traces(DATA / f"traces-{model}.jsonl").traces if t.split == split]
    if like:
        ran = {r["question_id"] for r in read_rows(out) if r["arm"] == like and r["split"] == split}
        traces = [t for t in traced if t.question_id in ran]
    else:
        # evenly spaced through the traced questions: the traces file holds each split's collections in runs
        traces = [traced[i * len(traced) // limit] for i in range(min(limit, len(traced)))]
    gold_docs = {
        q.id: set(q.supporting_doc_ids)
        for q in load_questions(DATASETS / "multihop" / f"questions.{split}.jsonl")
    }
    settings = Settings.from_env(home=Path(home) if home else None, model=model, seed=0)
    choice = choose_controller("auto", None, settings)
    print(f"controller: {choice.kind} ({choice.source})", flush=True)
    async with Researcher(settings, controller=choice.factory) as researcher:
        for i, t in enumerate(traces):
            for arm in arms if i % 2 == 0 else arms[::-1]:
                if (t.question_id, arm) in done:
                    continue
                search_node.BACKFILL = ARMS[arm].backfill
                search_node.LINKED_FROM_TOP_RANK = ARMS[arm].top_rank
                researcher.search_k = ARMS[arm].k
                researcher.search_links = ARMS[arm].links
                started = time.monotonic()
                result = await researcher.aresearch(t.question, budget=ARMS[arm].budget)
                read = {s.doc_id for s in researcher.store.list_sources(result.run_id)}
                gold = gold_docs[t.question_id]
                actions = [e["node"] for e in result.trace if e["node"] in ("search", "think")]
                row = {
                    "question_id": t.question_id,
                    "split": t.split,
                    "arm": arm,
                    "answer": result.answer,
                    "f1": round(token_f1(result.answer, t.gold), 4),
                    "em": exact_match(result.answer, t.gold),
                    "actions": actions,
                    "searches": result.spend.searches,
                    "sources": len(read),
                    "gold_read": len(read & gold),
                    "gold": len(gold),
                    "seconds": round(time.monotonic() - started, 2),
                    "search_cost": researcher.store.get_run(result.run_id).budget.get("search_cost_tokens"),
                }
                with out.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(
                    f"{t.question_id} {arm}: F1 {row['f1']:.2f} gold {row['gold_read']}/{row['gold']} "
                    f"{''.join(a[0] for a in actions)} {row['seconds']} s",
                    flush=True,
                )


def compare(model: str, split: str, arms: list[str]) -> dict[str, Any]:
    """The two arms side by side on the questions both have run."""
    base, other = arms
    rows = [r for r in read_rows(_out(model)) if r["split"] == split]
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["question_id"], {})[r["arm"]] = r
    pairs = [(v[base], v[other]) for v in by.values() if base in v and other in v]
    if not pairs:
        raise SystemExit(f"no {split} question has both arms in {_out(model)}: run `record` first")
    print(f"{model}, {split}: {base} against {other}, {len(pairs)} questions")
    figures: dict[str, Any] = {"questions": len(pairs)}
    for i, arm in enumerate(arms):
        arm_rows = [p[i] for p in pairs]
        f1, se = mean_se([float(r["f1"]) for r in arm_rows])
        recall = statistics.fmean(r["gold_read"] / r["gold"] for r in arm_rows)
        every = statistics.fmean(float(r["gold_read"] == r["gold"]) for r in arm_rows)
        print(
            f"  {arm:<9} F1 {f1:.3f} ± {se:.3f}  EM {statistics.fmean(r['em'] for r in arm_rows):.3f}  "
            f"gold passages read {recall:.3f} (all of them on {every:.3f})  "
            f"{statistics.fmean(r['searches'] for r in arm_rows):.2f} searches, "
            f"{statistics.fmean(r['sources'] for r in arm_rows):.1f} sources, "
            f"{statistics.fmean(r['seconds'] for r in arm_rows):.1f} s"
        )
        key = arm.replace("-", "_")
        figures[f"{key}_f1"] = round(f1, 4)
        figures[f"{key}_gold_recall"] = round(recall, 4)
    for name in sorted({a["question_id"].split("_")[0] for a, _ in pairs}):
        part = [(a, b) for a, b in pairs if a["question_id"].split("_")[0] == name]
        pm, ps = mean_se([float(b["f1"]) - float(a["f1"]) for a, b in part])
        gain = statistics.fmean((b["gold_read"] - a["gold_read"]) / a["gold"] for a, b in part)
        every = [statistics.fmean(float(p[i]["gold_read"] == p[i]["gold"]) for p in part) for i in (0, 1)]
        print(
            f"  {name} ({len(part)}): F1 {pm:+.3f} ± {ps:.3f}, gold passages read {gain:+.3f}, "
            f"all of them {every[0]:.2f} → {every[1]:.2f}"
        )
    dm, ds = mean_se([float(b["f1"]) - float(a["f1"]) for a, b in pairs])
    better = sum(1 for a, b in pairs if b["f1"] > a["f1"])
    worse = sum(1 for a, b in pairs if b["f1"] < a["f1"])
    dr, drs = mean_se([(b["gold_read"] - a["gold_read"]) / a["gold"] for a, b in pairs])
    print(f"  {other} − {base}: F1 {dm:+.3f} ± {ds:.3f} ({better} better, {worse} worse); ", end="")
    print(f"gold passages read {dr:+.3f} ± {drs:.3f}")
    figures["f1_change"] = round(dm, 4)
    figures["f1_change_se"] = round(ds, 4)
    return figures


def gold_at(split: str, home: str | None, depths: list[int], links: list[int]) -> dict[str, Any]:
    """The share of the split's questions whose own top ``k`` on the demo index holds every gold passage,
    and with ``links``, whose top ``k`` and that many passages they link to hold it (by collection)."""
    settings = Settings.from_env(home=Path(home) if home else None)
    index = resolve_corpus(settings.corpus, settings.indexes_dir)
    questions = load_questions(DATASETS / "multihop" / f"questions.{split}.jsonl")
    figures: dict[str, Any] = {"questions": len(questions)}
    sets: dict[str, list[tuple[str, set[str], set[str]]]] = {}
    slots: dict[int, list[bool]] = {}  # for the first depth: is the i-th linked passage (or result) gold
    ranks: dict[int, list[bool]] = {}  # is the result at this rank gold
    namers: dict[int, list[bool]] = {}  # is a linked passage gold, by the rank of the result naming it
    for q in questions:
        top = index.search(q.question, k=max(depths))
        gold = set(q.supporting_doc_ids)
        for k in depths:
            sets.setdefault(f"{k}", []).append((q.id, gold, {r.doc_id for r in top[:k]}))
            for n in links:
                linked = index.linked(q.question, top[:k], n=n)
                read = {r.doc_id for r in top[:k]} | {r.doc_id for r in linked}
                sets.setdefault(f"{k}_links_{n}", []).append((q.id, gold, read))
                if k == depths[0] and n == max(links):
                    rank_of = {r.doc_id: r.rank for r in top}
                    for i, r in enumerate(linked, start=1):
                        slots.setdefault(i, []).append(r.doc_id in gold)
                        namers.setdefault(rank_of[r.linked_from], []).append(r.doc_id in gold)
        slots.setdefault(0, []).extend(r.doc_id in gold for r in top[: depths[0]])
        for r in top:
            ranks.setdefault(r.rank, []).append(r.doc_id in gold)
    for name, rows in sets.items():
        every = statistics.fmean(float(gold <= read) for _, gold, read in rows)
        parts = ", ".join(
            f"{c} {statistics.fmean(float(g <= r) for i, g, r in rows if i.startswith(c)):.3f}"
            for c in sorted({i.split("_")[0] for i, _, _ in rows})
        )
        what = name.replace("_links_", " and the passages they link to, at most ")
        print(f"{split}: the question's own top {what} hold every gold passage for {every:.3f} ({parts})")
        figures[f"every_gold_at_{name}"] = round(every, 4)
    for i, hits in sorted(slots.items()):
        what = f"linked passage {i}" if i else f"each of the top {depths[0]}"
        print(f"{split}: {what} is a gold passage for {statistics.fmean(hits):.3f} ({len(hits)} passages)")
    if ranks:
        print(
            f"{split}: the result at rank "
            + ", ".join(f"{k} {statistics.fmean(v):.3f}" for k, v in ranks.items())
        )
        figures.update(
            {f"gold_rate_rank_{k}": round(statistics.fmean(v), 4) for k, v in ranks.items() if k <= 2}
        )
    if namers:
        print(
            f"{split}: a linked passage named by the result at rank "
            + ", ".join(f"{k} {statistics.fmean(v):.3f} ({len(v)})" for k, v in sorted(namers.items()))
        )
        lower = [hit for k, v in namers.items() if k > 1 for hit in v]
        figures["gold_rate_linked_from_top"] = round(statistics.fmean(namers.get(1, [False])), 4)
        figures["gold_rate_linked_from_lower"] = round(statistics.fmean(lower or [False]), 4)
    return figures


def main() -> None:
    p = arguments(__doc__, limit_help="record: N traced questions of the split, evenly spaced")
    p.add_argument("--arms", nargs=2, choices=sorted(ARMS), default=["top-k", "backfill"])
    p.add_argument("--gold-at", type=int, nargs="+", help="only: every gold passage in the question's top K")
    p.add_argument("--links", type=int, nargs="*", default=[], help="--gold-at: with N linked passages too")
    p.add_argument("--like", choices=sorted(ARMS), help="record: the questions this arm has run instead")
    a = p.parse_args()
    if a.gold_at:
        out = gold_at(a.split, a.home, a.gold_at, a.links)
        print(" ".join(f"{k}={v}" for k, v in out.items()))
        return
    if a.command == "record":
        asyncio.run(record(a.model, a.split, a.limit, a.home, a.arms, a.like))
        return
    out = compare(a.model, a.split, a.arms)
    print(" ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
