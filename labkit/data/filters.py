"""Row filters: quality score, token length, exact duplicates. Each returns the kept rows and a count."""

from __future__ import annotations

import json
from typing import Any


def _score(row: dict) -> float | None:
    try:
        return float(row["score"])
    except (KeyError, TypeError, ValueError):
        return None


def filter_min_score(rows: list[dict], min_score: float | None) -> tuple[list[dict], int]:
    """Drop rows whose ``score`` is below ``min_score``. Rows without a score are kept (nothing to judge)."""
    if min_score is None:
        return rows, 0
    kept = [row for row in rows if (score := _score(row)) is None or score >= min_score]
    return kept, len(rows) - len(kept)


def filter_token_length(rows: list[dict], lengths: list[int], min_tokens: int | None,
                        max_tokens: int | None) -> tuple[list[dict], list[int], dict[str, int]]:
    """Keep rows whose rendered length is within [min_tokens, max_tokens]; returns rows, their lengths, counts."""
    low = min_tokens if min_tokens is not None else 0
    high = max_tokens if max_tokens is not None else float("inf")
    keep = [low <= n <= high for n in lengths]
    counts = {"too_short": sum(n < low for n in lengths), "too_long": sum(n > high for n in lengths)}
    return ([r for r, k in zip(rows, keep) if k], [n for n, k in zip(lengths, keep) if k], counts)


def conversation_key(row: dict) -> str:
    """What makes two rows the same conversation: their roles and texts (not id, category or score)."""
    return json.dumps([[m.get("role"), m.get("content")] for m in row["messages"]], ensure_ascii=False)


def dedupe(rows: list[dict], seen: set[str] | None = None) -> tuple[list[dict], int]:
    """Drop exact duplicate conversations, keeping the first; rows whose key is in ``seen`` are dropped too
    (pass the test rows' keys to keep test conversations out of training). ``seen`` is updated."""
    seen = set() if seen is None else seen
    kept: list[dict] = []
    for row in rows:
        key = conversation_key(row)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def keys_of(rows: list[Any]) -> set[str]:
    return {conversation_key(row) for row in rows}
