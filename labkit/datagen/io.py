"""Writing dataset files so that regenerating them is byte-for-byte reproducible.

Every file is UTF-8 JSON Lines with sorted keys, ``\\n`` line endings and rows in the order the
generator produced them (generators are seeded, so that order is stable).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCORE = 5.0
"""Constant quality score of every project row (kept only for FineTome-100k schema compatibility)."""


def row_id(dataset: str, split: str, index: int) -> str:
    """The project's row id, e.g. ``general-train-00042``."""
    return f"{dataset}-{split}-{index:05d}"


def chat_row(dataset: str, split: str, index: int, conversations: list[dict[str, str]],
             reference: Mapping[str, Any]) -> dict[str, Any]:
    """One row in FineTome-100k's ShareGPT schema plus the project fields."""
    return {
        "id": row_id(dataset, split, index),
        "category": dataset,
        "source": f"labkit/{dataset}",
        "score": SCORE,
        "conversations": conversations,
        "reference": dict(reference),
    }


def turns(human: str, gpt: str, system: str | None = None) -> list[dict[str, str]]:
    """A single-exchange ShareGPT conversation, with an optional system message first."""
    messages = [{"from": "system", "value": system}] if system else []
    return messages + [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


def stable_bucket(key: str, seed: int, buckets: int = 100) -> int:
    """A bucket in ``range(buckets)`` from a SHA-256 of ``seed:key``.

    Python's built-in ``hash`` is salted per process, so it cannot give a reproducible split.
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def dumps_row(row: Mapping[str, Any]) -> str:
    """A row as one JSON line (sorted keys, real UTF-8 characters, no trailing newline)."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` to ``path`` (creating parent folders); returns the number of rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [dumps_row(row) + "\n" for row in rows]
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(lines)
    return len(lines)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file written by :func:`write_jsonl`."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_splits(out_dir: Path, dataset: str, build_split, counts: Mapping[str, int]) -> dict[str, int]:
    """Write ``<out_dir>/<dataset>/<split>.jsonl`` for each split from ``build_split(split, count)``."""
    return {split: write_jsonl(out_dir / dataset / f"{split}.jsonl", build_split(split, count))
            for split, count in counts.items()}
