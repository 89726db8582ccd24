"""The tool loop with scripted stand-in models: calls, results fed back, errors, the per-turn limit, chat view."""

from __future__ import annotations

import json

import pytest

from labkit.infer.tools import make_registry, run_with_tools, tool_steps
from labkit.infer.tools.chatview import tool_chat_turn

CALL = json.dumps({"name": "calculate", "arguments": {"expression": "17 * 23"}})


class Script:
    """Replies from a list, in order; records the messages each reply was generated from."""

    def __init__(self, *replies):
        self.replies, self.seen = list(replies), []

    def __call__(self, messages):
        self.seen.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        return iter(reply) if isinstance(reply, list) else reply


@pytest.fixture()
def calc():
    return make_registry(["calculate"])


def test_call_runs_and_result_goes_back_as_a_tool_message(calc):
    model = Script(CALL, "It is 391.")
    turn = run_with_tools(model, "What is 17 * 23?", calc)
    assert [s.kind for s in turn.steps] == ["reply", "call", "result", "reply", "answer"]
    assert turn.calls == [{"name": "calculate", "arguments": {"expression": "17 * 23"}}]
    assert turn.results[0].value == 391 and turn.answer == "It is 391."
    second = model.seen[1]
    assert second[0]["role"] == "system" and second[1] == {"role": "user", "content": "What is 17 * 23?"}
    assert second[2:] == [{"role": "assistant", "content": CALL},
                          {"role": "tool", "name": "calculate", "content": '{"result": 391}'}]
    assert "call   -> " in str(turn) and 'result <- {"result": 391}' in str(turn)


def test_fallback_without_a_tool_role_is_a_user_message(calc):
    model = Script(CALL, "391")
    run_with_tools(model, "17*23?", calc, tool_role=False)
    assert model.seen[1][-1] == {"role": "user", "content": 'Tool result (calculate): {"result": 391}'}


def test_invalid_arguments_and_unknown_tools_are_fed_back_as_errors(calc):
    model = Script('{"name": "calculate", "arguments": {"expr": "1+1"}}', '{"name": "launch_rockets"}', "Sorry.")
    turn = run_with_tools(model, "1+1?", calc)
    first, second = turn.results
    assert not first.ok and "invalid arguments: 'expression' is a required property" in first.error
    assert not second.ok and second.error.startswith("unknown tool 'launch_rockets'")
    assert json.loads(model.seen[2][-1]["content"]) == {"error": second.error}
    assert turn.answer == "Sorry."


def call(expression: str) -> str:
    return json.dumps({"name": "calculate", "arguments": {"expression": expression}})


def test_the_same_call_again_ends_the_turn(calc):
    model = Script(CALL, CALL, "never asked for")
    steps = list(tool_steps(model, [{"role": "user", "content": "17*23"}], calc, max_calls=3))
    assert [s.kind for s in steps] == ["reply", "call", "result", "reply", "limit"]
    assert "repeated the call to calculate" in steps[-1].text


def test_at_most_n_calls_per_turn(calc):
    model = Script(call("1+1"), call("2+2"), call("3+3"), "never asked for")
    steps = list(tool_steps(model, [{"role": "user", "content": "loop"}], calc, max_calls=2))
    assert [s.kind for s in steps].count("result") == 2
    assert steps[-1].kind == "limit" and "at most 2 call(s)" in steps[-1].text
    assert len(model.seen) == 3 and model.replies == ["never asked for"]
    assert [s.result.value for s in steps if s.kind == "result"] == [2, 4]
    zero = list(tool_steps(Script(CALL), [{"role": "user", "content": "x"}], calc, max_calls=0))
    assert [s.kind for s in zero] == ["reply", "limit"]


def test_plain_answers_and_json_in_answers_are_not_calls(calc):
    assert run_with_tools(Script("Paris."), "Capital of France?", calc).calls == []
    text = 'Here is the record: {"name": "Ada", "born": 1815} as asked.'
    turn = run_with_tools(Script(text), "JSON for Ada", calc)
    assert turn.calls == [] and turn.answer == text
    fenced = "```json\n" + CALL + "\n```"
    assert run_with_tools(Script(fenced, "391"), "17*23", calc).calls[0]["name"] == "calculate"


def test_streamed_pieces_are_steps(calc):
    steps = list(tool_steps(Script(["3", "91"]), [{"role": "user", "content": "x"}], calc))
    assert [(s.kind, s.text) for s in steps] == [("piece", "3"), ("piece", "91"), ("reply", "391"), ("answer", "391")]


def test_chat_view_shows_call_result_and_answer(calc):
    shown = [{"role": "user", "content": "What is 17 * 23?"}]
    updates = [list(u) for u in tool_chat_turn(Script(CALL, ["It is ", "391."]), calc,
                                               [{"role": "user", "content": "q"}], shown)]
    final = updates[-1]
    assert [m.get("metadata", {}).get("title") for m in final[1:]] == [
        "Tool call: calculate", final[2]["metadata"]["title"], None]
    assert final[1]["content"] == '`calculate({"expression": "17 * 23"})`'
    assert final[2]["content"] == "391" and final[2]["metadata"]["title"].startswith("Result of calculate")
    assert final[3] == {"role": "assistant", "content": "It is 391."}
    assert any(u[-1]["content"] == "It is " for u in updates)  # the answer streamed in


def test_has_tool_role(smol_tokenizer):
    from labkit.infer.tools import has_tool_role

    class NoToolRole:
        def apply_chat_template(self, messages, tokenize=False):
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant/...")

    class ToolAsUser:  # like labkit's Gemma template: every non-assistant turn is a user turn
        def apply_chat_template(self, messages, tokenize=False):
            return "".join(("model: " if m["role"] == "assistant" else "user: ") + m["content"] for m in messages)

    assert has_tool_role(smol_tokenizer) is True  # ChatML: <|im_start|>tool
    assert has_tool_role(NoToolRole()) is False
    assert has_tool_role(ToolAsUser()) is False


def test_the_real_model_path_runs(tiny_model, smol_tokenizer, one_thread):
    """The plumbing with the tiny random model: prompt rendering, generation, parsing (its text is noise)."""
    from labkit.infer import Sampling
    from labkit.infer.tools import model_generate

    generate = model_generate(tiny_model, smol_tokenizer, Sampling(max_new_tokens=8))
    turn = run_with_tools(generate, "What is 17 * 23?", calc_registry := make_registry(["calculate"]))
    assert turn.steps[0].kind == "reply" and turn.steps[-1].kind in ("answer", "limit")
    streamed = model_generate(tiny_model, smol_tokenizer, Sampling(max_new_tokens=8), stream=True)
    steps = list(tool_steps(streamed, [{"role": "user", "content": "hi"}], calc_registry))
    assert any(s.kind == "piece" for s in steps)
