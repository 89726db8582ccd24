"""The tool loop as chat messages for the Gradio app (no Gradio import: testable on its own).

Each call and each result is an assistant message with ``metadata.title`` (Gradio draws it as a titled
box); :func:`labkit.infer.chat.build_conversation` leaves such messages out of the next turn's model input,
so later turns see the user's messages and the final answers only.
"""

from __future__ import annotations

import json
from typing import Iterator

from labkit.infer.tools.loop import DEFAULT_MAX_CALLS, Generate, Step, tool_steps
from labkit.infer.tools.registry import ToolRegistry


def call_message(step: Step) -> dict:
    arguments = json.dumps(step.call["arguments"], ensure_ascii=False)
    return {"role": "assistant", "content": f"`{step.call['name']}({arguments})`",
            "metadata": {"title": f"Tool call: {step.call['name']}"}}


def result_message(step: Step) -> dict:
    result = step.result
    if result.ok:
        value = result.value if isinstance(result.value, str) else json.dumps(result.value, ensure_ascii=False)
        title = f"Result of {result.name} ({result.seconds:.2f} s)"
        return {"role": "assistant", "content": value, "metadata": {"title": title}}
    return {"role": "assistant", "content": result.error, "metadata": {"title": f"Error from {result.name}"}}


def tool_chat_turn(generate: Generate, registry: ToolRegistry, conversation: list[dict], shown: list[dict],
                   *, max_calls: int = DEFAULT_MAX_CALLS, tool_role: bool = True) -> Iterator[list[dict]]:
    """Yield the whole chat history after each step; ``shown`` already ends with the new user message."""
    shown = list(shown)
    live = False  # whether shown[-1] is the reply being written now
    yield shown
    for step in tool_steps(generate, conversation, registry, max_calls=max_calls, tool_role=tool_role):
        if step.kind in ("piece", "reply") and not live:
            shown.append({"role": "assistant", "content": ""})
            live = True
        if step.kind == "piece":
            shown[-1] = {"role": "assistant", "content": shown[-1]["content"] + step.text}
        elif step.kind == "reply":
            shown[-1] = {"role": "assistant", "content": step.text}
        elif step.kind == "call":
            shown[-1], live = call_message(step), False
        elif step.kind == "result":
            shown.append(result_message(step))
        elif step.kind == "answer":
            shown[-1], live = {"role": "assistant", "content": step.text}, False
        elif step.kind == "limit":
            shown[-1] = {"role": "assistant", "content": step.text, "metadata": {"title": "Tool call limit"}}
        yield shown
