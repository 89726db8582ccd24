"""Tools in the chat app, in headless Chromium: the user turns on ``calculate`` in the Tools panel and asks
"What is 17 * 23?"; a scripted stand-in model emits the call, the real tool runs, and the page shows the
call, the result 391 and the final answer. The app is built on the tiny model, so the plumbing is the real one.
"""

from __future__ import annotations

import json

import pytest
from test_chat_browser import browser, free_port, open_app, pytestmark  # noqa: F401  (a fixture, the skip mark)

ANSWER = "17 * 23 = 391, computed with the calculator."


class ScriptedModel:
    """Calls calculate on the user's question; once a tool message is back, streams an answer that quotes it."""

    def __init__(self):
        self.seen: list[list[dict]] = []

    def __call__(self, messages: list[dict]):
        self.seen.append([dict(m) for m in messages])
        if messages[-1]["role"] != "tool":
            return json.dumps({"name": "calculate", "arguments": {"expression": "17 * 23"}})
        result = json.loads(messages[-1]["content"])["result"]
        return iter(["17 * 23 = ", f"{result}, ", "computed with the calculator."])


@pytest.fixture(scope="module")
def tools_app(smol_tokenizer):
    import labkit.infer.chat as chat
    from labkit.models import load_causal_lm

    model = ScriptedModel()
    app = chat.build_app(load_causal_lm("tiny-random-llama"), smol_tokenizer, tool_generate=model)
    url = chat.launch(app, port=free_port(), quiet=True)
    try:
        yield url, model
    finally:
        app.close()


def test_calculate_call_result_and_answer_show_in_the_page(tools_app, browser):  # noqa: F811
    url, model = tools_app
    page = open_app(browser, url)
    page.get_by_text("Tools", exact=True).click()
    page.locator("#labkit-tools").get_by_label("calculate").check()
    box = page.locator("#labkit-message textarea")
    box.fill("What is 17 * 23?")
    box.press("Enter")
    chatbot = page.locator("#labkit-chatbot")
    chatbot.get_by_text(ANSWER).wait_for(timeout=20_000)
    chatbot.get_by_text("Tool call: calculate").wait_for(timeout=5_000)
    chatbot.get_by_text("Result of calculate").wait_for(timeout=5_000)
    text = chatbot.text_content()
    assert '{"expression": "17 * 23"}' in text, text          # the call and its arguments are shown
    assert "391" in text.replace(ANSWER, ""), text             # the result, apart from the answer quoting it
    # the model saw the tools' system prompt and got the result back as a tool message
    first, second = model.seen
    assert first[0]["role"] == "system" and '"name":"calculate"' in first[0]["content"]
    assert second[-1] == {"role": "tool", "name": "calculate", "content": '{"result": 391}'}
