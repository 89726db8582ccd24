"""A model's function call, parsed from its reply: the one parser that the tool loop (labkit.infer.tools) runs
calls with and the evaluation (labkit.eval) scores them with, so that what counts as a call is the same in both."""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json_object(reply: str) -> dict | None:
    """First JSON object in a reply: inside ```json fences if any, else the first '{' that parses."""
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] + [reply]
    decoder = json.JSONDecoder()
    for text in candidates:
        for start in (i for i, ch in enumerate(text) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def parse_function_call(reply: str) -> tuple[dict | None, str | None]:
    """Return ({"name", "arguments"}, None) or (None, reason). Accepts "parameters" for "arguments"
    and arguments given as a JSON-encoded string (OpenAI style)."""
    obj = extract_json_object(reply)
    if obj is None:
        return None, "no JSON object found in reply"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None, "JSON object has no string 'name'"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None, "'arguments' is a string that is not valid JSON"
    if not isinstance(args, dict):
        return None, f"'arguments' must be an object, got {type(args).__name__}"
    return {"name": name, "arguments": args}, None
