"""Tools a model can call: a plain Python function plus its JSON-schema parameters.

A tool's schema has exactly the form the function-calling training rows list in their system prompt
(``{"name", "description", "parameters": {"type": "object", "properties", "required"}}``, one compact JSON
line per tool), so a model tuned on ``data/function_calling`` calls these tools the way it was trained to.

Running a call never passes model text to ``eval``/``exec``/a shell: the call names a registered function,
its arguments are checked against the schema with ``jsonschema`` first, and the function runs in a worker
thread with a time limit.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

# The system prompt of the function-calling training rows (labkit/datagen/function_calling.py writes them;
# tests/test_tools.py checks these stay equal to it): a head line, one compact JSON schema per tool, a tail.
SYSTEM_HEAD = "You can call these tools (JSON schema):"
SYSTEM_TAIL = ('Reply with exactly one JSON object {"arguments": {...}, "name": "<tool>"} '
               "that calls the right tool. No other text.")
# Added for chat: after a result the model should answer in words (the training rows end at the call).
FOLLOW_UP = "When a tool result comes back, answer the user in plain text."
DEFAULT_TIMEOUT_S = 10.0


class _TimedOut(Exception):
    """The worker did not finish in time (not TimeoutError: a tool's own network time-out is its own error)."""


class ToolError(Exception):
    """A tool refused its input or failed in an expected way; the message is shown to the user and model."""


@dataclass(frozen=True)
class Tool:
    """A callable tool: ``function(**arguments)`` returns something JSON-serialisable or raises ToolError."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"tool name {self.name!r}: use letters, digits and underscores")
        if self.parameters.get("type") != "object" or not isinstance(self.parameters.get("properties"), dict):
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON schema "
                             '{"type": "object", "properties": {...}, "required": [...]}')
        from jsonschema.validators import validator_for

        validator_for(self.parameters).check_schema(self.parameters)  # a broken schema fails at registration

    def schema(self) -> dict[str, Any]:
        """The schema line as the training rows write it (key order: name, description, parameters)."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass
class ToolResult:
    """What one call did: its value, or the error that stopped it (bad arguments, a raise, a time-out)."""

    name: str
    arguments: dict[str, Any]
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    def content(self) -> str:
        """The text fed back to the model as the tool message."""
        payload = {"result": self.value} if self.ok else {"error": self.error}
        return json.dumps(payload, ensure_ascii=False, default=str)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "ok": self.ok, "result": self.value,
                "error": self.error, "seconds": round(self.seconds, 4)}


@dataclass
class ToolRegistry:
    """The tools one conversation may call, by name."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self.tools:
            raise ValueError(f"tool {tool.name!r} is registered twice; pick another name")
        self.tools[tool.name] = tool
        return tool

    def register(self, name: str, description: str, parameters: dict[str, Any],
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> Callable[[Callable], Callable]:
        """Decorator: ``@registry.register("name", "what it does", {json schema})`` on a function."""
        def decorate(function: Callable) -> Callable:
            self.add(Tool(name, description, parameters, function, timeout_s))
            return function
        return decorate

    def names(self) -> list[str]:
        return list(self.tools)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def subset(self, names: Iterable[str]) -> "ToolRegistry":
        """A registry with only ``names`` (in that order); an unknown name is an error naming the choices."""
        names = list(names)
        unknown = [n for n in names if n not in self.tools]
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(self.tools)}")
        return ToolRegistry({n: self.tools[n] for n in names})

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.tools.values()]

    def system_prompt(self, extra: str = "", follow_up: bool = True) -> str:
        """The tools block of the system prompt in the training format, after ``extra`` (a persona) if any."""
        lines = [json.dumps(s, separators=(",", ":"), ensure_ascii=False) for s in self.schemas()]
        block = "\n".join([SYSTEM_HEAD, *lines, SYSTEM_TAIL + (" " + FOLLOW_UP if follow_up else "")])
        return f"{extra.strip()}\n\n{block}" if extra and extra.strip() else block

    def run(self, name: str, arguments: Mapping[str, Any] | None) -> ToolResult:
        """Validate and run one call; never raises for a bad call, a failing tool or a slow one."""
        args = dict(arguments or {})
        started = time.perf_counter()

        def failed(message: str) -> ToolResult:
            return ToolResult(name, args, ok=False, error=message, seconds=time.perf_counter() - started)

        tool = self.tools.get(name)
        if tool is None:
            return failed(f"unknown tool {name!r}; available: {', '.join(self.tools) or 'none'}")
        problem = argument_problem(tool, args)
        if problem:
            return failed(f"{name}: invalid arguments: {problem}")
        try:
            value = _call_with_time_limit(tool, args)
        except _TimedOut:
            return failed(f"{name}: timed out after {tool.timeout_s:g} s")
        except ToolError as err:
            return failed(f"{name}: {err}")
        except Exception as err:  # a tool's own bug: reported to the user and the model, the chat goes on
            return failed(f"{name} failed: {type(err).__name__}: {err}")
        return ToolResult(name, args, ok=True, value=value, seconds=time.perf_counter() - started)


def argument_problem(tool: Tool, arguments: dict[str, Any]) -> str | None:
    """The first schema violation of ``arguments`` as one line (path and reason), or None when valid."""
    from jsonschema.validators import validator_for

    validator = validator_for(tool.parameters)(tool.parameters)
    error = next(iter(sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.path)
    return f"{where}: {error.message}" if where else error.message


def _call_with_time_limit(tool: Tool, arguments: dict[str, Any]) -> Any:
    """Run the tool in a daemon thread and wait at most its time limit.

    Python cannot stop a thread: a timed-out call is abandoned (a daemon thread, so it never holds up the
    interpreter's exit) and the user gets a time-out error at once. Built-in tools bound their own work.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = tool.function(**arguments)
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    worker = threading.Thread(target=work, name=f"tool-{tool.name}", daemon=True)
    worker.start()
    worker.join(tool.timeout_s)
    if worker.is_alive():
        raise _TimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
