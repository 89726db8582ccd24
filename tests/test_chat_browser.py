"""The chat app in a real browser: headless Chromium types a message and watches the reply stream in.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright's Python package; no browser
is downloaded. The test skips only when that Chromium is missing.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
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


@pytest.fixture()
def served_app(tiny_model, smol_tokenizer, monkeypatch):
    """The app on the tiny model at 127.0.0.1:<free port>; also counts the pieces the server streamed."""
    import torch

    import labkit.chat as chat
    from labkit.infer import Sampling

    streamed, finished = [], threading.Event()
    real_stream = chat.stream_chat

    def counting_stream(*args, **kwargs):
        for piece in real_stream(*args, **kwargs):
            streamed.append(piece)
            yield piece
        finished.set()

    monkeypatch.setattr(chat, "stream_chat", counting_stream)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads spin-wait on a busy 2-core machine and slow generation ~10x
    app = chat.build_app(tiny_model, smol_tokenizer, sampling=Sampling(max_new_tokens=48, temperature=0.8, seed=1))
    url = chat.launch(app, port=free_port(), quiet=True)   # the server runs in Gradio's background thread
    yield url, streamed, finished
    app.close()
    torch.set_num_threads(threads)


def test_typed_message_gets_a_streamed_reply(served_app, tmp_path):
    from playwright.sync_api import sync_playwright

    url, streamed, finished = served_app
    assert url.startswith("http://127.0.0.1:")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM if CHROMIUM.exists() else
                                                                    shutil.which("chromium")),
            headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
            box = page.locator("#labkit-message textarea")
            box.wait_for(timeout=20_000)
            page.evaluate(WATCH_REPLIES)
            box.fill("Hello, who are you?")
            box.press("Enter")
            page.locator('#labkit-chatbot [data-testid="user"]').filter(has_text="Hello, who are you?").wait_for(
                timeout=10_000)
            assert finished.wait(30), "the server did not finish the reply within 30 s"
            page.wait_for_function("() => window.replySnapshots.length > 0", timeout=10_000)
            time.sleep(0.5)                          # let the last streamed update render
            snapshots = page.evaluate("() => window.replySnapshots")
            final = page.locator('#labkit-chatbot [data-testid="bot"]').last.text_content().strip()
            left_in_box = box.input_value()
        finally:
            browser.close()
    assert len(streamed) > 1, "the server produced the reply in one piece: nothing was streamed"
    assert final, "the assistant message in the page is empty"
    assert len(snapshots) > 1, f"the page showed the reply only once (no streaming seen): {snapshots}"
    assert left_in_box == "", "the message box should be cleared once the message is sent"
