"""Convert rows of any known schema into the project's form: ``messages`` [{role, content}].

Roles become system / user / assistant. Text is stripped of surrounding whitespace once here (so the
templates need not trim). Each converted message remembers where it came from in the source row
(``_paths``), so that validation can name the source field, e.g. ``conversations[2].value``.
Columns ``id, category, source, score, reference`` are kept when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from labkit.data.problems import RowProblem
from labkit.data.schemas import (KEPT_COLUMNS, SHAREGPT_ROLES, TOOL_PREFIX, TOOL_ROLES, check_column_map,
                                 detect_schema)

PATHS = "_paths"   # per message: (role field path, content field path) in the source row


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _turn(role: Any, content: Any, role_path: str, content_path: str) -> tuple[dict, tuple[str, str]]:
    return {"role": role, "content": _strip(content)}, (role_path, content_path)


def _map_role(raw_role: Any, content: Any, roles: Mapping[str, str]) -> tuple[Any, Any]:
    """Map a speaker name to system/user/assistant; tool results become user turns (see schemas.TOOL_ROLES)."""
    if not isinstance(raw_role, str):
        return raw_role, content
    key = raw_role.strip().lower()
    if key in roles:
        return roles[key], content
    if key in TOOL_ROLES and "tool" not in roles:
        tagged = isinstance(content, str) and content.strip()
        return "user", (TOOL_PREFIX + content.strip()) if tagged else content
    return raw_role, content


def _from_turn_list(row: Mapping[str, Any], column: str, roles: Mapping[str, str],
                    role_key: str | None = None, content_key: str | None = None) -> tuple[list, list]:
    turns = row.get(column)
    if not isinstance(turns, list) or not turns:
        raise RowProblem("not_a_list", column, f"must be a non-empty list of turns, got {type(turns).__name__}",
                         f"give each row a '{column}' list of {{role, content}} turns")
    messages, paths = [], []
    for position, turn in enumerate(turns):
        where = f"{column}[{position}]"
        if not isinstance(turn, Mapping):
            raise RowProblem("bad_turn", where, f"must be an object, got {type(turn).__name__}",
                             "write each turn as {\"from\": ..., \"value\": ...} or {\"role\": ..., \"content\": ...}")
        r_key = role_key or ("from" if "from" in turn else "role")
        c_key = content_key or ("value" if "value" in turn else "content")
        if r_key not in turn:
            raise RowProblem("missing_role", where, f"has no '{r_key}' key (keys: {sorted(turn)})",
                             f"add the speaker under '{r_key}'")
        role, content = _map_role(turn[r_key], turn.get(c_key), roles)
        message, path = _turn(role, content, f"{where}.{r_key}", f"{where}.{c_key}")
        messages.append(message)
        paths.append(path)
    return messages, paths


def _from_columns(row: Mapping[str, Any], system: str | None, user: str, assistant: str) -> tuple[list, list]:
    messages, paths = [], []
    if system and isinstance(row.get(system), str) and row[system].strip():
        add = _turn("system", row[system], system, system)
        messages.append(add[0]), paths.append(add[1])
    for role, column in (("user", user), ("assistant", assistant)):
        add = _turn(role, row.get(column), column, column)
        messages.append(add[0]), paths.append(add[1])
    return messages, paths


def _alpaca(row: Mapping[str, Any]) -> tuple[list, list]:
    messages, paths = _from_columns(row, "system", "instruction", "output")
    extra = row.get("input")
    if isinstance(extra, str) and extra.strip() and isinstance(messages[-2]["content"], str):
        messages[-2]["content"] = f"{messages[-2]['content']}\n\n{extra.strip()}"
    return messages, paths


def squad_answers(row: Mapping[str, Any]) -> list[str]:
    answers = row.get("answers")
    texts = answers.get("text") if isinstance(answers, Mapping) else answers
    if not isinstance(texts, list) or not texts:
        raise RowProblem("no_answer", "answers.text", "has no gold answer (an unanswerable SQuAD v2 question?)",
                         "drop unanswerable questions (data.invalid=drop) or give answers.text a list of strings")
    return list(texts)


def _squad(row: Mapping[str, Any]) -> tuple[list, list]:
    texts = squad_answers(row)
    context, question = _strip(row.get("context")), _strip(row.get("question"))
    for name, value in (("context", context), ("question", question)):
        if not isinstance(value, str) or not value:
            raise RowProblem("empty_content", name, "is empty or not a string", f"give every row a '{name}' text")
    user = {"role": "user", "content": f"Context: {context}\nQuestion: {question}"}
    assistant = {"role": "assistant", "content": _strip(texts[0])}
    return [user, assistant], [("question", "question"), ("answers.text[0]", "answers.text[0]")]


def _custom(row: Mapping[str, Any], column_map: Mapping[str, Any]) -> tuple[list, list]:
    check_column_map(column_map)
    if "messages" in column_map:
        roles = {**SHAREGPT_ROLES, **{str(k).lower(): v for k, v in (column_map.get("roles") or {}).items()}}
        return _from_turn_list(row, column_map["messages"], roles, column_map.get("role_key"),
                               column_map.get("content_key"))
    return _from_columns(row, column_map.get("system"), column_map["user"], column_map["assistant"])


def _kept_columns(row: Mapping[str, Any], schema: str, messages: list, source: str) -> dict:
    kept = {name: row[name] for name in KEPT_COLUMNS if row.get(name) is not None}
    kept.setdefault("source", source)
    kept.setdefault("category", "reading_qa" if schema == "squad" else short_name(source))
    if schema == "squad":
        kept["reference"] = {**(kept.get("reference") or {}), "answers": squad_answers(row)}
    kept.setdefault("reference", {})
    if "id" in kept:
        kept["id"] = str(kept["id"])
    return kept


def short_name(source: str) -> str:
    """``project:general`` -> ``general``; ``mlabonne/FineTome-100k`` -> ``FineTome-100k``; a path -> its stem."""
    if source.startswith("project:"):
        return source.split(":", 1)[1]
    if "/" in source and not PurePath(source).suffix:
        return source.rsplit("/", 1)[-1]
    return PurePath(source).stem


def standardise_row(row: Mapping[str, Any], schema: str, column_map: Mapping[str, Any] | None = None,
                    source: str = "data") -> dict:
    """One source row in the project's form (plus ``_paths``); raises :class:`RowProblem` on broken structure."""
    if not isinstance(row, Mapping):
        raise RowProblem("not_an_object", "<row>", f"is a {type(row).__name__}, not an object", "write one JSON "
                         "object per row")
    if schema == "sharegpt":
        messages, paths = _from_turn_list(row, "conversations", SHAREGPT_ROLES)
    elif schema == "messages":
        messages, paths = _from_turn_list(row, "messages", SHAREGPT_ROLES)
    elif schema == "alpaca":
        messages, paths = _alpaca(row)
    elif schema == "squad":
        messages, paths = _squad(row)
    elif schema == "finance":
        messages, paths = _from_columns(row, "system", "user", "assistant")
    elif schema == "custom":
        messages, paths = _custom(row, column_map or {})
    else:
        raise ValueError(f"unknown schema {schema!r}")
    return {**_kept_columns(row, schema, messages, source), "messages": messages, PATHS: paths}


def resolve_schema(rows: list, schema: str, source: str) -> str:
    """``auto`` -> the schema detected from the first row; otherwise ``schema`` itself."""
    if schema != "auto" or not rows:
        return schema
    first = rows[0]
    return detect_schema(first if isinstance(first, Mapping) else {}, source)
