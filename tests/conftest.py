"""Shared fixtures. Tests run offline, with their own run root, and share one model cache.

The model cache (``$LABKIT_HOME/models``) is kept between test sessions so that the embedded SmolLM2 is
materialised once per machine, not once per test run.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EVALSETS = REPO.parent / "shared" / "data" / "evalsets"


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Every test writes its runs into its own temporary folder."""
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (ChatML template, eos fixed to <|im_end|>)."""
    from labkit.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from labkit.models import resolve

    return resolve("tiny-random-llama")


@pytest.fixture()
def tiny_model(tiny_model_path):
    """A fresh 2-layer random Llama with SmolLM2's vocabulary, in eval mode on the CPU."""
    from labkit.models import load_causal_lm

    return load_causal_lm("tiny-random-llama")


@contextmanager
def _one_torch_thread():
    """One torch thread: the tiny model's matrices are so small that a second thread only spin-waits, which made
    generation ~10x slower on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def one_thread():
    with _one_torch_thread():
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """For a whole test module: ``pytestmark = pytest.mark.usefixtures("one_thread_module")``."""
    with _one_torch_thread():
        yield
