"""Lenient reading of model replies that should be JSON: small models wrap, truncate or chat around it."""

from __future__ import annotations

import json
import re
from typing import Any

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``, repairing a reply cut off by max_tokens; None if hopeless."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    candidates = []
    match = _OBJECT.search(text)
    if match:
        candidates.append(match.group(0))
    start = text.find("{")
    if start >= 0:
        tail = text[start:]
        # a reply truncated by the token cap: close the open string, list and object
        for suffix in ('"}', '"]}', "]}", "}", '""}'):
            candidates.append(tail + suffix)
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def as_text(value: Any) -> str:
    """A model's JSON value as stripped text (None becomes empty, other values their string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(as_text(v) for v in value)
    return str(value).strip()


def as_int_list(value: Any) -> list[int]:
    """A model's JSON value as a list of integers (source numbers); what is not a number is dropped."""
    if not isinstance(value, list):
        value = [value]
    out = []
    for v in value:
        try:
            out.append(int(str(v).strip().strip("[]")))
        except ValueError:
            continue
    return out
