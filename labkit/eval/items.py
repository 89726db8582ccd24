"""Held-out evaluation items: the seeded subset per category and the gold answer of each row.

Prepared test rows look like ``{id, category, source, messages, reference}``. The prompt is the conversation
without its last assistant turn; the gold answer comes from ``reference`` when the row carries one (the
project's datasets do) and otherwise from that last assistant turn, so hub data works too.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GENERATION_CATEGORIES = ("function_calling", "reading_qa", "arithmetic", "general")
MC_CATEGORY = "mc_knowledge"


class EvalDataError(ValueError):
    """A test row cannot be evaluated (the message names the row, the field and the fix)."""


def split_last_answer(row: Mapping[str, Any]) -> tuple[list[dict], str]:
    """(prompt messages, last assistant reply) of a prepared row."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages or messages[-1].get("role") != "assistant":
        raise EvalDataError(f"test row {row.get('id', '<no id>')!r}: 'messages' must end with an assistant turn "
                            "(the answer to compare with); re-run the data preparation (notebook 01)")
    return list(messages[:-1]), messages[-1]["content"]


def seeded_subset(rows: Sequence[Mapping], limit: int | None, seed: int, key: str = "") -> list[Mapping]:
    """At most ``limit`` rows, picked at random with a seed (None keeps all), kept in their file order.

    The pick depends on ``seed`` and ``key`` (the category) only, so base and fine-tuned models, and
    repeated runs, see the same items.
    """
    if limit is None or limit >= len(rows):
        return list(rows)
    chosen = sorted(random.Random(f"{seed}:{key}").sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def by_category(rows: Sequence[Mapping], limit: int | None, seed: int) -> dict[str, list[Mapping]]:
    """Rows grouped by their ``category`` field, each group cut to a seeded subset of ``limit``."""
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(str(row.get("category") or "general"), []).append(row)
    return {name: seeded_subset(group, limit, seed, name) for name, group in sorted(groups.items())}


# ----------------------------------------------------------------- gold answers from a row's reference

def _reference(row: Mapping) -> dict:
    reference = row.get("reference")
    return reference if isinstance(reference, dict) else {}


def gold_call(row: Mapping) -> dict:
    """The reference function call {name, arguments[, optional]}; else the JSON of the last assistant turn."""
    from labkit.eval.metrics import parse_function_call

    reference = _reference(row)
    if "name" in reference:
        return reference
    call, error = parse_function_call(split_last_answer(row)[1])
    if call is None:
        raise EvalDataError(f"test row {row.get('id')!r} (function_calling): no reference call and the answer is "
                            f"not a call ({error}); give the row reference={{name, arguments}}")
    return call


def gold_answers(row: Mapping) -> list[str]:
    """Accepted answers of a reading-comprehension row (SQuAD keeps several)."""
    reference = _reference(row)
    for key in ("answers", "answer", "text"):
        value = reference.get(key)
        if isinstance(value, dict):  # the SQuAD hub schema: {"text": [...], "answer_start": [...]}
            value = value.get("text")
        if isinstance(value, str) and value.strip():
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
    return [split_last_answer(row)[1]]


def gold_number(row: Mapping) -> float:
    """The numeric answer of an arithmetic row: reference answer, else the last number of the reply."""
    from labkit.eval.metrics import extract_final_number

    reference = _reference(row)
    for key in ("answer", "value", "result"):
        if key in reference:
            try:
                return float(str(reference[key]).replace(",", ""))
            except ValueError:
                raise EvalDataError(f"test row {row.get('id')!r} (arithmetic): reference.{key}={reference[key]!r} "
                                    "is not a number") from None
    number = extract_final_number(split_last_answer(row)[1])
    if number is None:
        raise EvalDataError(f"test row {row.get('id')!r} (arithmetic): no reference answer and no number in the "
                            "reply; give the row reference={answer: <number>}")
    return number


# ----------------------------------------------------------------- multiple choice

def mc_path() -> Path:
    from labkit.config import project_data_dir

    return project_data_dir() / MC_CATEGORY / "test.jsonl"


def load_mc_items(limit: int | None, seed: int, path: Path | None = None) -> list[dict]:
    """The project's multiple-choice items ({id, query, choices, gold}) as a seeded subset; [] when absent."""
    from labkit.eval.mcscore import validate_item
    from labkit.runs import read_jsonl

    path = path or mc_path()
    if not path.exists():
        return []
    rows = read_jsonl(path)
    items = []
    for number, row in enumerate(rows, 1):
        item = validate_item(row, f"{path}:{number}")
        item["id"] = str(row.get("id", f"{MC_CATEGORY}-{number:05d}"))
        items.append(item)
    return [dict(i) for i in seeded_subset(items, limit, seed, MC_CATEGORY)]
