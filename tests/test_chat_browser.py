"""The chat app in a real browser: headless Chromium types a message and watches the reply stream in.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright's Python package; no browser
is downloaded. The test skips only when that Chromium is missing.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and shutil.which("chromium") is None,
                                reason="Chromium is not installed: apt-get install -y chromium (make test does)")

# Records every distinct text of the newest bot message as the page changes, so streaming is observed in the
# browser itself rather than by polling from Python (which could miss fast updates).
WATCH_REPLIES = """() => {
  window.replySnapshots = [];
  const root = document.querySelector('#labkit-chatbot');
  const record = () => {
    const bots = root.querySelectorAll('[data-testid="bot"]');
    const text = bots.length ? bots[bots.length - 1].textContent.trim() : '';
    const seen = window.replySnapshots;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(record).observe(root, {childList: true, subtree: true, characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(build_app, stream=None):
    """Serve ``build_app()`` at 127.0.0.1:<free port> with one torch thread (two threads spin-wait on a busy 2-core
    machine and slow generation ~10x), ``chat.stream_chat`` replaced by ``stream`` if given; yields the URL."""
    import torch

    import labkit.infer.chat as chat

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        if stream is not None:
            patch.setattr(chat, "stream_chat", stream)
        app = build_app()
        url = chat.launch(app, port=free_port(), quiet=True)  # the server runs in Gradio's background thread
        try:
            yield url
        finally:
            app.close()
            torch.set_num_threads(threads)



QUIZ_REPLY = json.dumps([
    {"question": "What is the capital of France?", "choices": ["Paris", "Rome", "Oslo", "Bern"], "answer": "A"},
    {"question": "Which planet is red?", "choices": ["Venus", "Mars"], "answer": "B"},          # dropped
    {"question": "2 + 2 = ?", "choices": ["3", "4", "5", "6"], "answer": 1},
])


@pytest.fixture(scope="module")
def served_app(smol_tokenizer):
    """The app on the tiny model at 127.0.0.1:<free port>, with a scripted quiz writer.

    Also counts the pieces the server streamed, and signals when a reply is finished.
    """
    import labkit.infer.chat as chat
    from labkit.infer.generate import Sampling
    from labkit.models import load_causal_lm

    streamed, finished = [], threading.Event()
    real_stream = chat.stream_chat

    def counting_stream(*args, **kwargs):
        for piece in real_stream(*args, **kwargs):
            streamed.append(piece)
            yield piece
        finished.set()

    def build():
        return chat.build_app(load_causal_lm("tiny-random-llama"), smol_tokenizer,
                              sampling=Sampling(max_new_tokens=48, temperature=0.8, seed=1),
                              quiz_generate=lambda messages, attempt: QUIZ_REPLY)

    with serving(build, counting_stream) as url:
        yield url, streamed, finished


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_FLAGS)
        try:
            yield context
        finally:
            context.close()


def open_app(browser, url):
    page = browser.new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#labkit-message textarea").wait_for(timeout=20_000)
    return page


def test_typed_message_gets_a_streamed_reply(served_app, browser):
    url, streamed, finished = served_app
    assert url.startswith("http://127.0.0.1:")
    page = open_app(browser, url)
    page.evaluate(WATCH_REPLIES)
    box = page.locator("#labkit-message textarea")
    box.fill("Hello, who are you?")
    box.press("Enter")
    page.locator('#labkit-chatbot [data-testid="user"]').filter(has_text="Hello, who are you?").wait_for(
        timeout=10_000)
    assert finished.wait(30), "the server did not finish the reply within 30 s"
    page.wait_for_function("() => window.replySnapshots.length > 0", timeout=10_000)
    time.sleep(0.5)                                  # let the last streamed update render
    snapshots = page.evaluate("() => window.replySnapshots")
    final = page.locator('#labkit-chatbot [data-testid="bot"]').last.text_content().strip()
    assert len(streamed) > 1, "the server produced the reply in one piece: nothing was streamed"
    assert final, "the assistant message in the page is empty"
    assert len(snapshots) > 1, f"the page showed the reply only once (no streaming seen): {snapshots}"
    assert box.input_value() == "", "the message box should be cleared once the message is sent"


def test_quiz_tab_writes_a_quiz_and_marks_answers(served_app, browser):
    url, _, _ = served_app
    page = open_app(browser, url)
    page.get_by_role("tab", name="Quiz").click()
    page.get_by_label("Topic").fill("geography")
    page.get_by_role("button", name="Write quiz").click()
    # 3 questions asked (the default), 2 valid ones scripted: two retries, each repeating both (dropped)
    page.get_by_text("2 of 3 questions on 'geography': 3 generation(s), 2 retries, 7 dropped").wait_for(
        timeout=15_000)
    page.get_by_text("What is the capital of France?").wait_for(timeout=5_000)
    page.get_by_label("A. Paris").check()
    page.get_by_role("button", name="Answer").click()
    page.get_by_text("Right: A. Paris").wait_for(timeout=10_000)
    page.get_by_text("2 + 2 = ?").wait_for(timeout=5_000)
    page.get_by_label("C. 5").check()
    page.get_by_role("button", name="Answer").click()
    page.get_by_text("Wrong: you chose C; the answer is B. 4").wait_for(timeout=10_000)
    page.get_by_text("Quiz over: 1 of 2 right").wait_for(timeout=5_000)


# ------------------------------------------------------------------ Stop, and a failing generation

@pytest.fixture(scope="module")
def controlled_app(smol_tokenizer):
    """The app on a tiny model whose generation can be slowed down (``delay`` s a token) or made to fail.

    Returns (url, control, closed): ``control["steps"]`` counts generation steps; ``closed`` is set when the
    server-side stream ends, whether finished, stopped or failed.
    """
    from transformers import LogitsProcessorList

    import labkit.infer.chat as chat
    from labkit.infer import Sampling
    from labkit.models import load_causal_lm

    control, closed = {"delay": 0.0, "fail_after": None, "steps": 0}, threading.Event()

    def step(input_ids, scores):
        control["steps"] += 1
        time.sleep(control["delay"])
        if control["fail_after"] is not None and control["steps"] > control["fail_after"]:
            raise RuntimeError("simulated GPU failure")
        return scores

    model = load_causal_lm("tiny-random-llama")
    real_generate, real_stream = model.generate, chat.stream_chat
    model.generate = lambda **kw: real_generate(**kw, logits_processor=LogitsProcessorList([step]))

    def watched_stream(*args, **kwargs):
        closed.clear()
        try:
            yield from real_stream(*args, **kwargs)
        finally:
            closed.set()

    def build():
        return chat.build_app(model, smol_tokenizer, sampling=Sampling(max_new_tokens=400, temperature=0.8, seed=1))

    with serving(build, watched_stream) as url:
        yield url, control, closed


def send(page, text: str) -> None:
    box = page.locator("#labkit-message textarea")
    box.fill(text)
    box.press("Enter")
    page.locator('#labkit-chatbot [data-testid="user"]').filter(has_text=text).wait_for(timeout=10_000)


def test_stop_button_ends_the_reply_and_the_generation(controlled_app, browser):
    url, control, closed = controlled_app
    control.update(delay=0.05, fail_after=None, steps=0)       # 400 tokens would take 20 s or more
    page = open_app(browser, url)
    page.evaluate(WATCH_REPLIES)
    send(page, "Tell me a long story.")
    page.wait_for_function("() => window.replySnapshots.length >= 3", timeout=20_000)
    page.get_by_role("button", name="Stop").click()
    assert closed.wait(10), "the server went on streaming after Stop was pressed"
    steps = control["steps"]
    assert steps < 300, f"generation ran {steps} of 400 steps before it stopped"
    time.sleep(1.0)
    assert control["steps"] <= steps + 1, "the model went on generating after Stop"
    shown = page.evaluate("() => window.replySnapshots.length")
    time.sleep(0.5)
    assert page.evaluate("() => window.replySnapshots.length") == shown, "the reply went on growing in the page"
    control.update(delay=0.0, steps=0)                          # the app answers the next message
    send(page, "Are you still there?")
    page.locator('#labkit-chatbot [data-testid="bot"]').nth(1).wait_for(timeout=30_000)
    assert closed.wait(60) and control["steps"] > 0


def test_a_generation_error_is_shown_in_the_page(controlled_app, browser):
    url, control, closed = controlled_app
    control.update(delay=0.0, fail_after=3, steps=0)
    page = open_app(browser, url)
    send(page, "Hello?")
    page.get_by_text("generation failed: RuntimeError: simulated GPU failure").first.wait_for(timeout=20_000)
    assert closed.is_set()
    control.update(fail_after=None)
