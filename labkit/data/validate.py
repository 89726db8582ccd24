"""Check standardised conversations, and apply the ``data.invalid`` policy (fail or drop + report).

A valid conversation: an optional system message first, then user and assistant turns alternating,
starting with user and ending with assistant; every content a non-empty string.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable

from labkit.data.problems import DataValidationError, RowProblem
from labkit.data.standardise import PATHS

ROLES = ("system", "user", "assistant")
REPORT_EXAMPLES = 10


def _paths(row: dict, index: int) -> tuple[str, str]:
    paths = row.get(PATHS)
    if paths and index < len(paths):
        return paths[index]
    return f"messages[{index}].role", f"messages[{index}].content"


def _message_problems(row: dict) -> list[RowProblem]:
    problems = []
    for index, message in enumerate(row["messages"]):
        role_path, content_path = _paths(row, index)
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            problems.append(RowProblem("unknown_role", role_path, f"role {role!r} is not known",
                                       "use system, user or assistant (ShareGPT: system, human, gpt), or map it "
                                       "with data.schema=custom and data.column_map={roles: {...}}"))
        if not isinstance(content, str):
            problems.append(RowProblem("non_string_content", content_path,
                                       f"content is a {type(content).__name__}, not text", "make it a string"))
        elif not content:
            problems.append(RowProblem("empty_content", content_path, "content is empty",
                                       "fill it in or remove the turn (and its partner turn)"))
    return problems


def _order_problem(row: dict) -> RowProblem | None:
    roles = [message.get("role") for message in row["messages"]]
    start = 1 if roles and roles[0] == "system" else 0
    for index in range(start, len(roles)):
        expected = "user" if (index - start) % 2 == 0 else "assistant"
        if roles[index] != expected:
            role_path, _ = _paths(row, index)
            where = "a system message may only come first" if roles[index] == "system" else \
                f"expected {expected} here (turns so far: {roles[:index + 1]})"
            return RowProblem("role_order", role_path, f"role {roles[index]!r} is out of order: {where}",
                              "after an optional system message, user and assistant must alternate, starting "
                              "with user")
    if "assistant" not in roles:
        return RowProblem("no_assistant_turn", _paths(row, 0)[0].rsplit("[", 1)[0] if roles else "messages",
                          f"the conversation has no assistant turn (roles: {roles})",
                          "add the answer the model should learn")
    if roles[-1] != "assistant":
        role_path, _ = _paths(row, len(roles) - 1)
        return RowProblem("ends_without_answer", role_path, "the conversation ends with a user turn",
                          "end it with the assistant's answer or remove the last user turn")
    return None


def row_problems(row: dict) -> list[RowProblem]:
    """Everything wrong with one standardised row (unknown roles first: they make the order check moot)."""
    problems = _message_problems(row)
    if not any(p.kind == "unknown_role" for p in problems):
        order = _order_problem(row)
        problems += [order] if order else []
    return problems


def check_rows(rows: Iterable[Any], convert: Callable[[Any], dict], *, policy: str = "fail",
               source: str = "data") -> tuple[list[dict], dict]:
    """Convert and validate every row; returns (kept rows, report). ``policy='fail'`` raises
    :class:`DataValidationError` naming the first bad row; ``'drop'`` drops bad rows and reports them."""
    if policy not in ("fail", "drop"):
        raise ValueError(f"data.invalid={policy!r} is invalid: use fail or drop")
    kept, problems, bad_rows, total = [], [], 0, 0
    for index, raw in enumerate(rows):
        total += 1
        try:
            row = convert(raw)
            found = row_problems(row)
        except RowProblem as problem:
            row, found = None, [problem]
        if not found:
            kept.append({k: v for k, v in row.items() if k != PATHS})
            continue
        row_id = (row or {}).get("id") or (raw.get("id") if isinstance(raw, dict) else None)
        for problem in found:
            problem.row, problem.id, problem.source = index, None if row_id is None else str(row_id), source
        if policy == "fail":
            raise DataValidationError(found)
        bad_rows += 1
        problems += found
    return kept, _report(source, total, len(kept), bad_rows, problems)


def _report(source: str, total: int, kept: int, dropped: int, problems: list[RowProblem]) -> dict:
    return {"source": source, "rows": total, "kept": kept, "dropped": dropped,
            "problems": dict(Counter(p.kind for p in problems)),
            "examples": [{**p.to_dict(), "text": str(p)} for p in problems[:REPORT_EXAMPLES]]}
