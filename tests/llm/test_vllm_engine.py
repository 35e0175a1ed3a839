"""The in-process vLLM engine: its import guard and its reading of vLLM's output objects.

Running ``vllm.LLM`` needs a GPU; on CPU machines these tests check what can be checked without one.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from leadline.errors import ConfigError
from leadline.llm.vllm_engine import VllmEngine, completion_from_output, import_vllm


def test_missing_vllm_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail even where it is installed
    with pytest.raises(ConfigError, match=r"pip install 'leadline\[vllm\]'"):
        import_vllm()
    with pytest.raises(ConfigError, match="in-process vLLM engine"):
        VllmEngine("Qwen/Qwen2.5-0.5B-Instruct", gpu_memory_utilization=0.5)


def test_request_output_becomes_a_completion() -> None:
    # The attribute names of vllm.outputs.RequestOutput / CompletionOutput (vLLM 0.32).
    logprob = SimpleNamespace
    output = SimpleNamespace(
        prompt_token_ids=[1, 2, 3, 4],
        outputs=[
            SimpleNamespace(
                text="Paris.",
                token_ids=[11, 12],
                finish_reason="stop",
                logprobs=[
                    {11: logprob(logprob=-0.5, decoded_token="Paris"), 99: logprob(logprob=-1.0)},
                    {12: logprob(logprob=-0.25, decoded_token=".")},
                ],
            ),
            SimpleNamespace(text="Lyon", token_ids=[13, 14, 15], finish_reason="length", logprobs=None),
        ],
    )
    completion = completion_from_output(output)
    assert [c.text for c in completion.choices] == ["Paris.", "Lyon"]
    assert [c.finish_reason for c in completion.choices] == ["stop", "length"]
    assert completion.choices[0].logprobs == (-0.5, -0.25)
    assert completion.choices[0].tokens == ("Paris", ".")
    assert completion.choices[1].logprobs is None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 5)
