"""Helpers for the training tests: a small prepared run (the files notebook 01 writes) and its config."""

from __future__ import annotations

import random

from labkit.config import Config, load_config
from labkit.runs import Run, write_jsonl

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


def prepared_run(name: str, overrides: dict | None = None, **sizes) -> tuple[Config, Run]:
    """A run holding prepared data and the smoke config (tiny random Llama) with ``overrides``."""
    run = Run.open(name)
    make_prepared_run(run, **sizes)
    # data.sources must name something that exists; the data stage is not run here, the files above are used.
    values = {"data.sources": str(run.path("data", "train.jsonl")), "train.eval_steps": 0, **(overrides or {})}
    cfg = load_config("smoke", values)
    run.save_config(cfg)
    return cfg, run


def smoke_config(overrides: dict | None = None) -> Config:
    """The smoke config for tests that read no data (the hub-style source name is never fetched)."""
    return load_config("smoke", {"data.sources": "labkit-tests/no-data", **(overrides or {})})
