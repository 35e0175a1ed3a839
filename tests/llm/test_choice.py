"""A choice's confidence in one JSON field: the log-probabilities of the tokens that spell its value."""

from __future__ import annotations

import pytest

from leadline.llm.base import Choice, json_value_span

TOKENS = ('{"', "answer", '":', ' "', "James", " W", ".", '",', ' "', "sources", '":', " [", "1", "]}")
VALUES = (-0.6, -0.0, -0.0, -0.0, -2.0, -1.0, -0.0, -0.1, -0.0, -0.0, -0.0, -0.8, -0.3, -0.0)


def test_only_the_tokens_inside_the_value_count() -> None:
    choice = Choice(text="".join(TOKENS), logprobs=VALUES, tokens=TOKENS)
    assert choice.field_logprob("answer") == pytest.approx((-2.0 - 1.0 - 0.0) / 3)
    assert choice.mean_logprob == pytest.approx(sum(VALUES) / len(VALUES))
    assert choice.field_logprob("sources") == choice.mean_logprob  # a list is no scalar value


def test_without_token_texts_or_the_field_it_is_the_mean_of_every_token() -> None:
    mean = sum(VALUES) / len(VALUES)
    assert Choice(text="", logprobs=VALUES).field_logprob("answer") == pytest.approx(mean)
    assert Choice(text="", logprobs=VALUES, tokens=TOKENS[:-1]).field_logprob("answer") == pytest.approx(mean)
    assert Choice(text="", logprobs=VALUES, tokens=TOKENS).field_logprob("quote") == pytest.approx(mean)
    assert Choice(text="").field_logprob("answer") is None


def test_a_token_that_straddles_the_value_edge_counts() -> None:
    tokens = ('{"answer": "Par', 'is"}')
    choice = Choice(text="".join(tokens), logprobs=(-1.0, -3.0), tokens=tokens)
    assert choice.field_logprob("answer") == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"answer": "Paris", "sources": []}', "Paris"),
        ('{"answer":1942}', "1942"),
        ('{"sources": [2], "answer": true }', "true"),
        ('{"answer": "say \\"hi\\" now"}', 'say \\"hi\\" now'),
        ('{"answer": "cut off", "sour', "cut off"),
    ],
)
def test_the_value_span_of_a_field(text: str, value: str) -> None:
    span = json_value_span(text, "answer")
    assert span is not None and text[span[0] : span[1]] == value


@pytest.mark.parametrize(
    "text", ['{"answer": ""}', '{"other": "x"}', "Paris", '{"answer": "no end', '{"answer": [1, 2]}']
)
def test_no_value_no_span(text: str) -> None:
    assert json_value_span(text, "answer") is None
