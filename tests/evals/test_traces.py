"""Anytime traces: recording through the real loop (scripted fakes), bad input, the fit and the dev report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from leadline import Budget, Researcher, Settings
from leadline.agent.nodes import search as search_node
from leadline.errors import ConfigError
from leadline.evals.datasets import QAItem
from leadline.evals.trace_recorder import record_traces, recorded_ids
from leadline.evals.traces import (
    Probe,
    Trace,
    TraceSet,
    TraceStep,
    fit_runtime,
    read_traces,
)
from leadline.evals.traces_eval import (
    PRICES,
    choose_price,
    controller_stops,
    evaluate_traces,
    fit_controller,
    fit_stability,
)
from leadline.llm.base import GenerationParams, Message
from leadline.testing import FakeSearch, MemoryRunStore, ScriptedLLM
from leadline.tools.base import Document


def _docs() -> list[Document]:
    return [
        Document(
            doc_id="d1", title="The Selfish Gene", text="The Selfish Gene is a 1976 book by Richard Dawkins."
        ),
        Document(
            doc_id="d2", title="Richard Dawkins", text="Richard Dawkins studied at Balliol College, Oxford."
        ),
    ]


def _respond(messages: Sequence[Message], params: GenerationParams) -> str:
    prompt = messages[-1].content
    if '"queries"' in prompt:
        return json.dumps({"queries": ["Selfish Gene author"]})
    if '"next_query"' in prompt:
        return json.dumps({"known": "Dawkins wrote it", "answer_so_far": "", "next_query": "Dawkins college"})
    if "Sources:" in prompt:  # the answer prompt, in the loop or as a probe
        answer = "Balliol College" if "Balliol" in prompt else "Oxford"
        return json.dumps({"answer": answer, "sources": [1]})
    return json.dumps({"answer": "Cambridge", "sources": []})  # closed book


def test_the_recorder_runs_the_loop_probes_every_step_and_resumes(tmp_path: Path) -> None:
    r = Researcher(Settings(), llm=ScriptedLLM(_respond), search=FakeSearch(_docs()), store=MemoryRunStore())
    items = [
        QAItem(
            id="q1",
            question="Which college did the author of The Selfish Gene attend?",
            answers=("Balliol College",),
        ),
        QAItem(
            id="q2", question="Where did the author of The Selfish Gene study?", answers=("Balliol College",)
        ),
    ]
    out = tmp_path / "traces.jsonl"
    budget = Budget(tokens=1500, searches=4, search_cost_tokens=200)
    n = asyncio.run(record_traces(r, items[:1], out, budget=budget, split="train"))
    assert n == 1
    n = asyncio.run(record_traces(r, items, out, budget=budget, split="train"))  # resumes: q1 is there
    assert n == 1 and len(out.read_text().splitlines()) == 2
    traces = read_traces(out)
    assert not traces.skipped and [t.question_id for t in traces.traces] == ["q1", "q2"]
    t = traces.traces[0]
    assert t.closed_book.answer == "Cambridge" and t.closed_book.f1 == 0.0
    assert [s.step for s in t.steps] == list(range(1, len(t.steps) + 1)) and len(t.steps) >= 2
    assert t.steps[0].action == "search" and t.steps[-1].probe.f1 == 1.0  # Balliol found by the end
    assert [s.action for s in t.steps[:2]] == ["search", "think"]  # a think over each search's new sources
    assert t.steps[0].probe.cost > 0
    for before, step in zip(t.steps, t.steps[1:], strict=False):
        # a probe is asked again only when the step changed the sources or the notes
        same = step.action == "search" and step.signals["evidence"] == before.signals["evidence"]
        assert (step.probe.cost == 0) == same, (before, step)
        if same:
            assert step.probe.answer == before.probe.answer and step.signals["probe_agrees"] == 1.0
    assert {"new_docs", "score_spread", "evidence", "probe_agrees"} <= set(t.steps[0].signals)
    costs = [t.cost(i) for i in range(len(t.steps) + 1)]
    assert costs == sorted(costs) and costs[0] == 0.0


def _trace(qid: str, split: str, f1s: Sequence[float], new_docs: Sequence[int], model: str = "m") -> Trace:
    steps = []
    prev = None
    for i, (f, d) in enumerate(zip(f1s, new_docs, strict=True), 1):
        answer = "right" if f > 0.5 else f"wrong {i}"
        steps.append(
            TraceStep(
                step=i,
                action="search",
                tokens=100 * i,
                searches=i,
                signals={"new_docs": float(d), "probe_agrees": float(answer == prev)},
                probe=Probe(answer, 10, f, f),
            )
        )
        prev = answer
    return Trace(
        qid, f"question {qid}", split, model, ("right",), Probe("", 5, 0.0, 0.0), tuple(steps), 400.0
    )


def _population(seed: int, n: int, split: str) -> list[Trace]:
    """Answerable questions find new documents and turn right by step 2-3; hopeless ones find nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if rng.random() < 0.5:
            at = int(rng.integers(2, 4))
            f1s = [1.0 if s >= at else 0.0 for s in range(1, 9)]
            docs = [1] * 8
        else:
            f1s = [0.0] * 8
            docs = [0] * 8
        out.append(_trace(f"{split}{i}", split, f1s, docs))
    return out


def test_bad_traces_are_reported_and_skipped_and_bad_splits_are_one_line_errors(tmp_path: Path) -> None:
    good = _trace("a", "train", [0.0, 1.0], [1, 1])
    gap = good.to_dict()
    gap["question_id"] = "gap"
    gap["steps"][1]["step"] = 3  # step 2 missing
    unscored = good.to_dict()
    unscored["question_id"] = "unscored"
    unscored["steps"][0]["probe"]["f1"] = None
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in (good.to_dict(), gap, unscored)) + "\n{torn")
    traces = read_traces(path)
    assert [t.question_id for t in traces.traces] == ["a"]
    assert len(traces.skipped) == 3
    assert any("missing steps" in s for s in traces.skipped) and any("unscored" in s for s in traces.skipped)
    with pytest.raises(ConfigError, match="model 'm', not 'other'"):
        read_traces(path, model="other")
    with pytest.raises(ConfigError, match="no train traces"):
        evaluate_traces(TraceSet(traces=_population(1, 5, "dev")))
    with pytest.raises(ConfigError, match="no train traces"):
        fit_runtime([])
    mixed = TraceSet(traces=[*_population(1, 5, "train"), _trace("x", "dev", [1.0], [1], model="other")])
    with pytest.raises(ConfigError, match="several models"):
        evaluate_traces(mixed)


def test_the_fitted_controller_stops_hopeless_questions_early_on_dev() -> None:
    traces = TraceSet(traces=_population(7, 60, "train") + _population(8, 60, "dev"))
    fitted = fit_runtime(traces.split("train"))
    # the fit saw that a relevant search says the question is answerable
    assert fitted.model.search_signal.slope[0] > 0.3 and fitted.model.source.startswith("fitted on 60 train")
    report = evaluate_traces(traces, prices=np.geomspace(1e-6, 1e-2, 9).tolist(), bootstrap=50)
    assert report.questions == 60
    assert report.best_fixed_f1 > 0.4
    # the controller matches the best fixed budget with much less compute, and knows its uncertainty
    # (the ideal: hopeless questions stop after one search, answerable ones when right: 1.5x)
    assert report.efficiency > 1.2
    assert report.compute_interval[0] <= report.compute_to_match <= report.compute_interval[1]
    assert report.f1_gain_at_equal_compute >= -report.best_fixed_se
    assert "best fixed budget" in report.describe()
    # like the loop, the controller searches once before it may answer: it never answers closed book
    assert report.stops and min(report.stops) >= 1
    # ... so it cannot beat the best fixed budget's compute over the mean compute of a first search
    assert report.search_first_compute == np.mean([t.cost(1) for t in traces.split("dev")])
    assert report.efficiency <= report.search_first_bound + 1e-9


def test_a_killed_recording_resumes_without_recording_a_question_twice(tmp_path: Path) -> None:
    r = Researcher(Settings(), llm=ScriptedLLM(_respond), search=FakeSearch(_docs()), store=MemoryRunStore())
    items = [
        QAItem(id=f"q{i}", question=f"Which college did the author of The Selfish Gene attend ({i})?",
               answers=("Balliol College",))
        for i in range(3)
    ]  # fmt: skip
    out = tmp_path / "traces.jsonl"
    budget = Budget(tokens=1500, searches=4, search_cost_tokens=200)
    assert asyncio.run(record_traces(r, items[:2], out, budget=budget, split="train")) == 2
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed while writing q1
    assert recorded_ids(out) == {"q0"} and out.read_text().endswith("\n")
    # the same file for another split: q0 is there already, whatever its split
    assert asyncio.run(record_traces(r, items, out, budget=budget, split="dev")) == 2
    traces = read_traces(out)
    assert not traces.skipped
    assert [(t.question_id, t.split) for t in traces.traces] == [
        ("q0", "train"),
        ("q1", "dev"),
        ("q2", "dev"),
    ]
    t = traces.traces[0]
    assert t.run_seconds is not None and t.closed_book.seconds is not None
    assert all(s.probe.seconds is not None for s in t.steps)


def test_fit_controller_chooses_the_stop_rule_on_train_and_names_its_provenance(tmp_path: Path) -> None:
    traces = TraceSet(traces=_population(7, 60, "train") + _population(8, 60, "dev"))
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in traces.traces))
    fitted, fit, choice = fit_controller(read_traces(path), traces_file=path)
    assert fitted.model == "m" and fitted.provenance["train_questions"] == 60
    assert (
        len(str(fitted.provenance["traces_sha256"])) == 64 and fitted.provenance["traces_file"] == "t.jsonl"
    )
    assert choice.train_f1 >= choice.target_f1 and fitted.price == choice.price
    # hopeless train questions (nothing new found) stop early at the chosen price; answerable ones go on
    stops = [controller_stops(fit, t, choice.price) for t in traces.split("train")]
    hopeless = [s for s, t in zip(stops, traces.split("train"), strict=True) if _amplitude(t) == 0]
    answerable = [s for s, t in zip(stops, traces.split("train"), strict=True) if _amplitude(t) > 0]
    assert np.mean(hopeless) < np.mean(answerable)
    with pytest.raises(ConfigError, match="of model 'm', not 'other'"):
        fit_controller(traces, model="other")
    with pytest.raises(ConfigError, match="no train traces"):
        fit_controller(TraceSet(traces=traces.split("dev")))


def test_the_fit_repeated_on_train_resamples_reads_each_draws_stop_rule_on_dev() -> None:
    traces = TraceSet(traces=_population(7, 40, "train") + _population(8, 30, "dev"))
    draws = fit_stability(traces, resamples=4, seed=3)
    assert len(draws) == 4 and draws == fit_stability(traces, resamples=4, seed=3)  # seeded
    dev = traces.split("dev")
    best = float(np.mean([_amplitude(t) for t in dev]))  # every dev answer right where it can be
    for d in draws:
        assert d.price in PRICES and d.train_compute > 0 and 0.0 < d.dev_f1 <= best + 1e-12
        assert d.dev_compute >= np.mean([t.cost(t.first_search()) for t in dev])  # it searches first
    # the first draw, by hand: the resample, its fit, its stops on dev
    train = traces.split("train")
    sample = [train[i] for i in np.random.default_rng(3).integers(0, len(train), len(train))]
    fit = fit_runtime(sample)
    choice = choose_price(fit, sample)
    stops = [controller_stops(fit, t, choice.price) for t in dev]
    assert draws[0].price == choice.price
    at = list(zip(dev, stops, strict=True))
    assert draws[0].dev_f1 == pytest.approx(np.mean([t.f1(s) for t, s in at]))
    assert draws[0].dev_compute == pytest.approx(np.mean([t.cost(s) for t, s in at]))
    with pytest.raises(ConfigError, match="needs train traces"):
        fit_stability(TraceSet(traces=dev), resamples=1)


def test_fixed_budgets_past_a_short_trace_keep_its_last_answer() -> None:
    short = _trace("s", "dev", [0.0, 1.0], [1, 1])
    assert short.f1(5) == 1.0 and short.cost(5) == short.cost(2)
    traces = TraceSet(traces=_population(7, 30, "train") + _population(8, 20, "dev") + [short])
    report = evaluate_traces(traces, bootstrap=20)
    assert len(report.fixed) == 9 and report.questions == 21 and len(report.stops) == 21
    assert report.at_train_price[1] >= report.best_fixed_f1 - 3 * report.best_fixed_se


def _amplitude(t: Trace) -> float:
    return max(t.f1(i) for i in range(len(t.steps) + 1))


def test_a_probe_asks_a_comparisons_side_call_once_per_trace_but_counts_its_tokens_each_step() -> None:
    from leadline.agent.state import Evidence
    from leadline.evals.trace_recorder import _probe
    from leadline.llm.base import Completion

    def respond(messages: Sequence[Message], params: GenerationParams) -> str:
        prompt = messages[-1].content
        if '"fact"' in prompt:
            fact = "Richard Dawkins is a biologist." if "Dawkins" in prompt else "unknown"
            return json.dumps({"fact": fact})
        if "Answer yes or no" in prompt:
            return json.dumps({"answer": "yes"})
        return json.dumps({"answer": "yes", "sources": [1]})

    def ev(n: int, title: str, text: str) -> Evidence:
        return Evidence(n=n, doc_id=f"d{n}", title=title, url="", text=text, query="", score=1.0, rank=n)

    llm = ScriptedLLM(respond)
    question = "Were Richard Dawkins and Stephen Jay Gould both biologists?"
    sources = [
        ev(1, "Richard Dawkins", "Richard Dawkins is a biologist."),
        ev(2, "Stephen Jay Gould", "Stephen Jay Gould was a paleontologist."),
    ]
    memo: dict[str, Completion] = {}
    first, _ = asyncio.run(_probe(llm, question, sources, [], memo))
    asked = len(llm.calls)
    assert asked >= 3  # the two sides' facts (and the judge's calls), then the answer
    # a think step added a note: the answer call runs again, the side calls over the same sources do not
    second, _ = asyncio.run(_probe(llm, question, sources, ["Dawkins wrote The Selfish Gene."], memo))
    assert len(llm.calls) == asked + 1 and "Sources:" in llm.calls[-1].messages[-1].content
    assert second.cost >= first.cost > 0  # the reused side calls' tokens still count in the probe's cost


def test_a_trace_of_backfilled_searches_probes_the_sources_the_loop_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_node, "BACKFILL", True)
    # the question ranks p0, p1 first; the planned query "Selfish Gene author" finds only p2-p5, so its
    # backfilled call returns four unread passages, of which the loop reads two (k = 2)
    docs = [Document(doc_id=f"p{i}", title=f"P{i}", text=f"which college did attend {i}") for i in (0, 1)]
    docs += [Document(doc_id=f"p{i}", title=f"P{i}", text=f"Selfish Gene author {i}") for i in (2, 3, 4, 5)]
    store = MemoryRunStore()
    r = Researcher(Settings(), llm=ScriptedLLM(_respond), search=FakeSearch(docs), store=store, search_k=2)
    item = QAItem(id="q", question="Which college did the author of The Selfish Gene attend?", answers=("x",))
    out = tmp_path / "traces.jsonl"
    asyncio.run(record_traces(r, [item], out, budget=Budget(tokens=1500, searches=3), split="train"))
    (t,) = read_traces(out).traces
    assert t.search_backfill
    evidence = [s.signals["evidence"] for s in t.steps if s.action == "search"]
    (read,) = store.sources.values()
    assert sorted(read) == ["p0", "p1", "p2", "p3"]
    assert evidence[:2] == [2.0, 4.0] and evidence[-1] == 4.0


def test_a_trace_of_searches_that_follow_links_probes_the_linked_passages_too(tmp_path: Path) -> None:
    from leadline.tools.corpus_index import CorpusIndex, CorpusSearch
    from leadline.tools.passages import Passage

    passages = [
        Passage(id="gene", title="The Selfish Gene", text="The Selfish Gene is a book by Richard Dawkins."),
        Passage(id="dawkins", title="Richard Dawkins", text="Richard Dawkins studied at Balliol College."),
        Passage(id="other", title="Genes", text="A gene is a unit of heredity; which gene, which college."),
    ]
    index = CorpusIndex.build(passages, tmp_path / "idx", name="books")
    store = MemoryRunStore()
    r = Researcher(
        Settings(),
        llm=ScriptedLLM(_respond),
        search=CorpusSearch(index),
        store=store,
        search_k=1,
        search_links=1,
    )
    item = QAItem(
        id="q", question="Which college did the author of The Selfish Gene attend?", answers=("Balliol",)
    )
    out = tmp_path / "traces.jsonl"
    asyncio.run(
        record_traces(r, [item], out, budget=Budget(tokens=1500, searches=1, thinks=0), split="train")
    )
    (t,) = read_traces(out).traces
    assert t.search_links == 1
    (read,) = store.sources.values()
    assert sorted(read) == ["dawkins", "gene"]
    first = t.steps[0]
    assert first.signals["evidence"] == 2.0  # the probe saw both passages the loop read
    assert first.signals["new_docs"] == 1.0  # the controller's signal counts the search's own top k
    assert first.probe.answer == "Balliol College"
