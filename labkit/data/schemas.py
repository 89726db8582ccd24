"""Known row schemas and how to recognise them from a row's columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEMAS = ("sharegpt", "messages", "alpaca", "squad", "finance", "custom")

# ShareGPT speaker names seen in FineTome-100k / The-Tome and other ShareGPT exports.
SHAREGPT_ROLES: dict[str, str] = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "model": "assistant", "chatgpt": "assistant",
    "bing": "assistant", "bard": "assistant",
    # An assistant's tool call is assistant text; a tool's answer becomes a user turn (see TOOL_ROLES).
    "function_call": "assistant",
}
# Tool / function results. Small chat templates (ChatML, Llama 3 base format, Gemma) have no tool role
# the model was trained on, so a tool result is passed to the model as a user turn that says what it
# is. This keeps user/assistant alternation for the usual call -> result -> answer pattern.
TOOL_ROLES = ("tool", "function", "observation", "function_response", "ipython")
TOOL_PREFIX = "Tool result:\n"

# Columns carried through to the prepared rows when a source has them.
KEPT_COLUMNS = ("id", "category", "source", "score", "reference")


class SchemaError(ValueError):
    """The rows' columns match no known schema, or a custom column map is wrong."""


def detect_schema(row: Mapping[str, Any], source: str = "the source") -> str:
    """The schema of ``row`` judged from its columns (the first row stands for the whole source)."""
    columns = set(row)
    if "conversations" in columns:
        return "sharegpt"
    if "messages" in columns:
        return "messages"
    if {"context", "question", "answers"} <= columns:
        return "squad"
    if {"instruction", "output"} <= columns:
        return "alpaca"
    if {"user", "assistant"} <= columns:
        return "finance"
    raise SchemaError(
        f"cannot tell the schema of {source} from its columns {sorted(columns)}: known schemas are ShareGPT "
        "('conversations'), 'messages', Alpaca (instruction/input/output), SQuAD (context/question/answers), "
        "Finance-Instruct (system/user/assistant). Set data.schema=custom and data.column_map, e.g. "
        "column_map={user: prompt, assistant: response}")


def check_column_map(column_map: Mapping[str, Any]) -> None:
    allowed = {"messages", "system", "user", "assistant", "roles", "role_key", "content_key"}
    unknown = set(column_map) - allowed
    if unknown:
        raise SchemaError(f"data.column_map has unknown key(s) {sorted(unknown)}: allowed are {sorted(allowed)}")
    if "messages" not in column_map and not {"user", "assistant"} <= set(column_map):
        raise SchemaError("data.column_map must name either 'messages' (a list-of-turns column) or both "
                          "'user' and 'assistant' columns, e.g. column_map={user: prompt, assistant: response}")
