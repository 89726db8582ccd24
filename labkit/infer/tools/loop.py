"""The tool loop: the model replies; a tool call in the reply runs; its result goes back; the model answers.

:func:`tool_steps` drives any ``generate(messages)`` callable (a real model through :func:`model_generate`,
or a scripted stand-in in tests) and yields every step so the user sees the call, its arguments, the
result or the error, and the answer. The reply is parsed with the same parser the evaluation scores
function calls with (:func:`labkit.infer.calls.parse_function_call`), so what counts as a call is the same in both.

Tool results go back as ``{"role": "tool", "name": ..., "content": ...}`` when the chat template has a
tool role (ChatML models such as SmolLM2, Llama 3.x). Templates without one (Gemma's has only user and
model turns) get the documented fallback: a user message ``Tool result (NAME): {...}``; see :func:`has_tool_role`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from labkit.infer.calls import parse_function_call
from labkit.infer.tools.registry import ToolRegistry, ToolResult

# generate(messages) returns the whole reply, or an iterable of its pieces (streamed, for the chat app)
Generate = Callable[[list[dict]], "str | Iterable[str]"]
DEFAULT_MAX_CALLS = 3
FALLBACK_PREFIX = "Tool result"


@dataclass
class Step:
    """One visible step of a turn.

    kind: "piece" (a streamed piece of the current reply), "reply" (a whole model reply), "call" (the call
    parsed from it), "result" (what the tool returned or the error), "answer" (the final reply),
    "limit" (a further call was not run: the per-turn limit was reached).
    """

    kind: str
    text: str = ""
    call: dict[str, Any] | None = None
    result: ToolResult | None = None


@dataclass
class ToolTurn:
    """All steps of one turn, for notebooks: ``.answer``, ``.calls``, ``.results``, ``print(turn)``."""

    steps: list[Step] = field(default_factory=list)

    @property
    def answer(self) -> str:
        return next((s.text for s in reversed(self.steps) if s.kind in ("answer", "limit")), "")

    @property
    def calls(self) -> list[dict]:
        return [s.call for s in self.steps if s.kind == "call"]

    @property
    def results(self) -> list[ToolResult]:
        return [s.result for s in self.steps if s.kind == "result"]

    def __str__(self) -> str:
        lines = []
        for step in self.steps:
            if step.kind == "call":
                lines.append(f"call   -> {json.dumps(step.call, ensure_ascii=False)}")
            elif step.kind == "result":
                lines.append(f"result <- {step.result.content()}")
            elif step.kind in ("answer", "limit"):
                lines.append(f"{step.kind:6s}  : {step.text}")
        return "\n".join(lines)


def tool_message(result: ToolResult, tool_role: bool = True) -> dict[str, str]:
    """The message that carries a tool result back to the model (see the module docstring)."""
    if tool_role:
        return {"role": "tool", "name": result.name, "content": result.content()}
    return {"role": "user", "content": f"{FALLBACK_PREFIX} ({result.name}): {result.content()}"}


def has_tool_role(tokenizer) -> bool:
    """Whether the chat template renders a ``tool`` message as its own role.

    False when rendering raises (templates that accept only user/assistant turns) or when a tool message
    comes out exactly like a user message (labkit's Gemma template turns every non-assistant role into a
    user turn): then the fallback message, which names the tool, tells the model more.
    """
    marker = "labkit-tool-result-7431"
    head = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{}"}]
    try:
        as_tool = tokenizer.apply_chat_template(head + [{"role": "tool", "name": "t", "content": marker}],
                                                tokenize=False)
        as_user = tokenizer.apply_chat_template(head + [{"role": "user", "content": marker}], tokenize=False)
    except Exception:  # templates raise their own errors for roles they do not know
        return False
    return marker in as_tool and as_tool != as_user


def find_call(reply: str, registry: ToolRegistry) -> dict[str, Any] | None:
    """The call in ``reply``, or None when the reply is an answer.

    A JSON object naming a registered tool is a call wherever it sits in the reply; one naming an unknown
    tool counts as a (failing) call only when it is the whole reply, so an answer that merely contains
    JSON with a "name" key is not mistaken for a call.
    """
    call, _ = parse_function_call(reply)
    if call is None:
        return None
    stripped = reply.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    if call["name"] in registry or (stripped.startswith("{") and stripped.endswith("}")):
        return call
    return None


def _generate(generate: Generate, messages: list[dict]) -> Iterator[Step]:
    out = generate(messages)
    if isinstance(out, str):
        yield Step("reply", out)
        return
    reply = ""
    for piece in out:
        if piece:
            reply += piece
            yield Step("piece", piece)
    yield Step("reply", reply)


def tool_steps(generate: Generate, messages: list[dict], registry: ToolRegistry, *,
               max_calls: int = DEFAULT_MAX_CALLS, tool_role: bool = True) -> Iterator[Step]:
    """Run one user turn with tools; ``messages`` already holds the system prompt and the user message.

    At most ``max_calls`` calls run; a further call, or the same call again, ends the turn with a "limit"
    step instead of running.
    """
    if max_calls < 0:
        raise ValueError(f"max_calls is {max_calls}: use 0 or more")
    conversation = list(messages)
    calls, done = 0, set()
    while True:
        reply = ""
        for step in _generate(generate, conversation):
            reply = step.text if step.kind == "reply" else reply
            yield step
        call = find_call(reply, registry)
        if call is None:
            yield Step("answer", reply.strip())
            return
        key = json.dumps(call, sort_keys=True)
        if key in done:  # a model tuned only to emit calls tends to repeat one after its result
            yield Step("limit", f"Stopped: the model repeated the call to {call['name']} with the same "
                                "arguments; its result is shown above.", call=call)
            return
        if calls >= max_calls:
            yield Step("limit", f"Stopped: the model asked for another tool call ({call['name']}), but at most "
                                f"{max_calls} call(s) run per turn.", call=call)
            return
        calls += 1
        done.add(key)
        yield Step("call", call=call)
        result = registry.run(call["name"], call["arguments"])
        yield Step("result", result=result)
        conversation += [{"role": "assistant", "content": reply.strip()}, tool_message(result, tool_role)]


def run_with_tools(generate: Generate, prompt: str, registry: ToolRegistry, *, system: str = "",
                   max_calls: int = DEFAULT_MAX_CALLS, tool_role: bool = True) -> ToolTurn:
    """One question answered with tools (for notebooks): the tools' system prompt, the prompt, all steps."""
    messages = [{"role": "system", "content": registry.system_prompt(system)}, {"role": "user", "content": prompt}]
    steps = [s for s in tool_steps(generate, messages, registry, max_calls=max_calls, tool_role=tool_role)
             if s.kind != "piece"]
    return ToolTurn(steps)


def model_generate(model, tokenizer, sampling=None, stream: bool = False) -> Generate:
    """``generate(messages)`` for a real model (greedy by default); ``stream=True`` yields pieces."""
    from labkit.infer import Sampling, generate_chat, stream_chat

    sampling = sampling or Sampling(max_new_tokens=160)
    if stream:
        return lambda messages: stream_chat(model, tokenizer, messages, sampling)
    return lambda messages: generate_chat(model, tokenizer, [messages], sampling)[0]
