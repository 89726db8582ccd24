"""Streaming that cannot hang: a generation that raises, stalls, or is stopped by its reader.

The tiny model generates for real; a logits processor slipped into its ``generate`` raises or blocks after a
few tokens, which is how a failure in the worker thread (out of memory, a CUDA error) or a stall looks to
``stream_chat``. Each stream is read in a helper thread with a deadline, so a hang fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import threading
import time

import pytest

from labkit.infer import Sampling, StreamError, stream_chat

pytestmark = pytest.mark.usefixtures("one_thread")
SAMPLED = Sampling(max_new_tokens=40, temperature=0.8, seed=3)  # greedy, the tiny model only writes newlines
HELLO = [{"role": "user", "content": "Hello!"}]


class AfterTokens:
    """A logits processor that counts generation steps and calls ``action`` at step ``n`` + 1."""

    def __init__(self, n: int, action):
        self.n, self.action, self.steps = n, action, 0

    def __call__(self, input_ids, scores):
        self.steps += 1
        if self.steps > self.n:
            self.action()
        return scores


def patch_generate(monkeypatch, model, processor) -> None:
    from transformers import LogitsProcessorList

    real = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: real(**kw, logits_processor=LogitsProcessorList([processor])))


def read(stream, deadline: float = 20.0) -> tuple[list[str], BaseException | None, float]:
    """(pieces, the error the stream raised, seconds taken); fails if the stream is still going after ``deadline``."""
    pieces, errors = [], []

    def consume():
        try:
            for piece in stream:
                pieces.append(piece)
        except BaseException as err:  # noqa: BLE001 - returned to the test
            errors.append(err)

    started = time.monotonic()
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(deadline)
    assert not reader.is_alive(), f"the stream was still waiting after {deadline} s (pieces so far: {pieces})"
    return pieces, (errors[0] if errors else None), time.monotonic() - started


def test_an_error_in_the_generation_thread_is_raised_by_the_stream(tiny_model, smol_tokenizer, monkeypatch):
    def fail():
        raise RuntimeError("simulated out of memory")

    processor = AfterTokens(5, fail)
    patch_generate(monkeypatch, tiny_model, processor)
    pieces, error, seconds = read(stream_chat(tiny_model, smol_tokenizer, HELLO, SAMPLED))
    assert isinstance(error, StreamError), error
    assert str(error) == "generation failed: RuntimeError: simulated out of memory"
    assert isinstance(error.__cause__, RuntimeError)
    assert "".join(pieces).strip(), "the 5 tokens made before the failure were not shown"
    assert processor.steps == 6 and seconds < 10


def test_a_stalled_generation_fails_after_the_token_timeout(tiny_model, smol_tokenizer, monkeypatch):
    release = threading.Event()
    processor = AfterTokens(3, lambda: release.wait(30))
    patch_generate(monkeypatch, tiny_model, processor)
    try:
        _, error, seconds = read(stream_chat(tiny_model, smol_tokenizer, HELLO, SAMPLED, token_timeout=0.5))
    finally:
        release.set()
    assert isinstance(error, StreamError), error
    assert str(error).startswith("no new token within 0.5 s: generation stalled")
    assert seconds < 10


def test_closing_the_stream_stops_the_generation_thread(tiny_model, smol_tokenizer, monkeypatch):
    """What the chat's Stop button does: the reader closes the stream; the model must not go on generating."""
    processor = AfterTokens(10**9, lambda: None)   # only counts the steps
    patch_generate(monkeypatch, tiny_model, processor)
    stream = stream_chat(tiny_model, smol_tokenizer, HELLO, Sampling(max_new_tokens=1500, temperature=0.8, seed=3))
    first = next(stream)
    assert first is not None
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5
    assert not any(t.name == "labkit-stream" and t.is_alive() for t in threading.enumerate())
    steps = processor.steps
    time.sleep(0.3)
    assert processor.steps == steps < 200, f"generation went on after the stream was closed ({steps} steps)"


def test_a_normal_reply_still_streams_to_its_end(tiny_model, smol_tokenizer):
    pieces, error, _ = read(stream_chat(tiny_model, smol_tokenizer, HELLO, SAMPLED))
    assert error is None and len(pieces) > 1 and "".join(pieces).strip()
