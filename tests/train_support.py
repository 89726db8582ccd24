"""Helpers for the training tests: a small prepared run, and a stand-in for ``labkit.data.prepare``.

The stand-in is used only while the data stage's ``load_prepared`` is not in the tree; it reads the same
files with the same contract (``run/data/{split}.jsonl`` rows with ``messages``).
"""

from __future__ import annotations

import importlib.util
import random
import sys
import types

from labkit.runs import Run, read_jsonl, write_jsonl

SPLITS = ("train", "validation", "test")


def _conversation(rng: random.Random, index: int) -> list[dict]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    turns = [{"role": "user", "content": f"What is {a} plus {b}?"},
             {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]
    if index % 3 == 0:  # variable lengths: some rows carry a system prompt and a second exchange
        turns = [{"role": "system", "content": "You are a careful calculator. Answer in one sentence."}, *turns,
                 {"role": "user", "content": "And times two?"},
                 {"role": "assistant", "content": f"Twice that is {2 * (a + b)}."}]
    return turns


def make_prepared_run(run: Run, n_train: int = 48, n_val: int = 8, seed: int = 0) -> None:
    rng = random.Random(seed)
    sizes = {"train": n_train, "validation": n_val, "test": 4}
    for split in SPLITS:
        rows = []
        for i in range(sizes[split]):
            messages = _conversation(rng, i)
            rows.append({"id": f"{split}-{i}", "category": "arithmetic", "source": "test", "messages": messages,
                         "reference": messages[-1]["content"]})
        write_jsonl(run.path("data", f"{split}.jsonl"), rows)


def install_prepare_standin() -> None:
    """Provide ``labkit.data.prepare.load_prepared`` when the data stage has not written it yet."""
    if importlib.util.find_spec("labkit.data.prepare") is not None:
        return
    module = types.ModuleType("labkit.data.prepare")

    def load_prepared(run: Run, split: str) -> list[dict]:
        return read_jsonl(run.path("data", f"{split}.jsonl"))

    module.load_prepared = load_prepared
    sys.modules["labkit.data.prepare"] = module
