"""Checks that a generated row has the project's schema; generators call these before writing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHAT_FIELDS = {"id", "category", "source", "score", "conversations", "reference"}
MC_FIELDS = {"id", "category", "query", "choices", "gold"}


class DatasetRowError(ValueError):
    """A generated row breaks the schema; the message names the row and the field."""


def _fail(row: Mapping[str, Any], message: str) -> None:
    raise DatasetRowError(f"row {row.get('id', '<no id>')!r}: {message}")


def check_conversations(row: Mapping[str, Any]) -> None:
    """Roles are an optional system message, then human/gpt alternating, ending with gpt."""
    messages = row["conversations"]
    if not isinstance(messages, list) or not messages:
        _fail(row, "'conversations' must be a non-empty list")
    roles = [message.get("from") for message in messages]
    body = roles[1:] if roles[0] == "system" else roles
    expected = ["human", "gpt"] * (len(body) // 2)
    if not body or body != expected:
        _fail(row, f"roles must be [system] then human/gpt alternating and end with gpt, got {roles}")
    for position, message in enumerate(messages):
        if set(message) != {"from", "value"}:
            _fail(row, f"conversations[{position}] must have exactly the keys 'from' and 'value'")
        value = message["value"]
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            _fail(row, f"conversations[{position}].value must be a non-empty string without "
                       "leading or trailing whitespace")


def check_chat_row(row: Mapping[str, Any], dataset: str) -> None:
    """Schema of a chat (ShareGPT) row of ``dataset``; raises :class:`DatasetRowError`."""
    if set(row) != CHAT_FIELDS:
        _fail(row, f"fields must be {sorted(CHAT_FIELDS)}, got {sorted(row)}")
    if row["category"] != dataset or row["source"] != f"labkit/{dataset}":
        _fail(row, f"category/source must be {dataset!r} and 'labkit/{dataset}'")
    if not str(row["id"]).startswith(f"{dataset}-"):
        _fail(row, f"id must start with '{dataset}-'")
    score = row["score"]
    if not isinstance(score, float) or not 0.0 <= score <= 5.0:
        _fail(row, "score must be a float in [0, 5]")
    if not isinstance(row["reference"], dict):
        _fail(row, "reference must be an object")
    check_conversations(row)


def check_mc_row(row: Mapping[str, Any]) -> None:
    """Schema of a multiple-choice row (lm-evaluation-harness-like ``query/choices/gold``)."""
    if set(row) != MC_FIELDS:
        _fail(row, f"fields must be {sorted(MC_FIELDS)}, got {sorted(row)}")
    if not row["query"].startswith("Question: "):
        _fail(row, "query must start with 'Question: '")
    choices = row["choices"]
    if len(choices) != 4 or len(set(choices)) != 4 or not all(c and c == c.strip() for c in choices):
        _fail(row, "choices must be 4 distinct non-empty stripped strings")
    if row["gold"] not in range(4):
        _fail(row, "gold must be an index 0-3")


def check_unique_ids(rows: Iterable[Mapping[str, Any]]) -> None:
    """Ids are unique across all the rows given."""
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            _fail(row, "duplicate id")
        seen.add(row["id"])
