"""The chat app's Compare tab in headless Chromium: one message, two streamed answers side by side, the base one
generated with the LoRA adapter switched off and the tuned one with it on; each column names its model."""

from __future__ import annotations

import threading

import pytest

from test_chat_browser import CHROMIUM, CHROMIUM_FLAGS, open_app, serving  # noqa: F401  (shared browser helpers)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed: apt-get install -y chromium")


def _adapter_on(model) -> bool:
    from peft.tuners.lora import LoraLayer

    return not any(m.disable_adapters for m in model.modules() if isinstance(m, LoraLayer))


@pytest.fixture(scope="module")
def compare_app(smol_tokenizer):
    import peft
    import torch

    import labkit.infer.chat as chat
    from labkit.infer.chat_compare import run_sides
    from labkit.infer.generate import Sampling
    from labkit.models import load_causal_lm

    torch.manual_seed(0)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    model = peft.get_peft_model(load_causal_lm("tiny-random-llama"), config).eval()
    calls, done = [], threading.Event()
    real_stream = chat.stream_chat

    def recording_stream(model_, tokenizer, conversation, sampling):
        call = {"adapter_on": _adapter_on(model_), "pieces": [], "conversation": conversation}
        calls.append(call)
        for piece in real_stream(model_, tokenizer, conversation, sampling):
            call["pieces"].append(piece)
            yield piece
        if len(calls) == 2:
            done.set()

    def build():
        sides = run_sides(model, smol_tokenizer, "Base: tiny-random-llama", "Tuned: run demo")
        return chat.build_app(model, smol_tokenizer, sampling=Sampling(max_new_tokens=24, temperature=0.8, seed=1),
                              model_label="run demo (fine-tuned tiny-random-llama)", compare=sides)

    with serving(build, recording_stream) as url:
        yield url, calls, done


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS)
        try:
            yield context
        finally:
            context.close()


def test_one_message_gets_two_answers_side_by_side(compare_app, browser):
    url, calls, done = compare_app
    page = open_app(browser, url)
    page.get_by_text("Model: run demo (fine-tuned tiny-random-llama)").wait_for(timeout=10_000)  # Chat tab
    page.get_by_role("tab", name="Compare").click()
    box = page.locator("#labkit-compare-message textarea")
    box.wait_for(timeout=10_000)
    for label in ("Base: tiny-random-llama", "Tuned: run demo"):   # each column names its model
        assert page.get_by_text(label).first.is_visible()
    box.fill("Say hello")
    box.press("Enter")
    assert done.wait(60), "the two answers were not generated within 60 s"
    for column in (0, 1):
        page.locator(f'#labkit-compare-{column} [data-testid="user"]').filter(has_text="Say hello").wait_for(
            timeout=10_000)
        page.wait_for_function(
            f"""() => {{ const bots = document.querySelectorAll('#labkit-compare-{column} [data-testid="bot"]');
                      return bots.length === 1 && bots[0].textContent.trim().length > 0; }}""", timeout=10_000)
    assert [call["adapter_on"] for call in calls] == [False, True]   # base first (adapter off), then tuned
    assert all(len(call["pieces"]) > 1 for call in calls), "an answer was not streamed"
    assert calls[0]["conversation"] == calls[1]["conversation"]      # the same prompt to both
    assert box.input_value() == ""
