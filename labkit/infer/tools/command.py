"""``labkit tools``: list the built-in tools, or run one call and print its result or its error."""

from __future__ import annotations

import json
from typing import Any

from labkit.infer.tools.builtins import make_registry
from labkit.infer.tools.web import WebSearch


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``{"name": ..., "arguments": {...}}`` from the command line, or a ValueError that shows the form."""
    try:
        call = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--call is not valid JSON ({err.msg} at character {err.pos}); expected "
                         '\'{"name": "calculate", "arguments": {"expression": "2+3*4"}}\'') from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ValueError('--call needs a JSON object with a "name" and "arguments", e.g. '
                         '\'{"name": "calculate", "arguments": {"expression": "2+3*4"}}\'')
    arguments = call.get("arguments", call.get("parameters", {}))
    if not isinstance(arguments, dict):
        raise ValueError(f'--call: "arguments" must be a JSON object, got {type(arguments).__name__}')
    return call["name"], arguments


def tools_command(list_tools: bool, call: str | None, docs: str | None = None, web_search: bool = False,
                  web_backend: str = "ddgs", web_url: str | None = None) -> dict[str, Any]:
    """What ``labkit tools`` prints: {"tools": [schemas]} for --list, the call's record for --call."""
    web = WebSearch(enabled=web_search, backend=web_backend, url=web_url)
    registry = make_registry(docs=docs, web=web)
    if call is not None:
        name, arguments = parse_call(call)
        return registry.run(name, arguments).to_dict()
    if list_tools:
        return {"tools": registry.schemas()}
    raise ValueError("labkit tools: pass --list or --call '<json call>'")
