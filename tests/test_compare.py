"""Side-by-side generation on the tiny random model: batched greedy equals one-by-one greedy."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.infer.compare import prompt_and_reference, save_side_by_side, side_by_side
from labkit.config import load_config
from labkit.infer.generate import Sampling
from labkit.runs import Run, read_jsonl

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 plus 3?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour of the sky on a "
                                                                                    "clear day, please."}],
    {"id": "t1", "messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]},
    [{"role": "user", "content": "Count: one, two, three, four, five, six"}],
]


def scrambled_tiny_model(seed: int):
    """The tiny random Llama with large seeded random weights: its greedy replies are varied words, not the
    blank lines the freshly initialised model repeats (which would make any two tables trivially equal)."""
    import torch

    from labkit.models import load_causal_lm

    model = load_causal_lm("tiny-random-llama")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def test_batched_table_equals_one_by_one(smol_tokenizer):
    models = {"base": (scrambled_tiny_model(1), smol_tokenizer), "tuned": (scrambled_tiny_model(2), smol_tokenizer)}
    sampling = Sampling(max_new_tokens=8)
    batched = side_by_side(models, CONVERSATIONS, sampling, batch_size=4)
    single = side_by_side(models, CONVERSATIONS, sampling, batch_size=1)
    assert list(batched.columns) == ["prompt", "reference", "base", "tuned"]
    assert all(batched["base"].str.len() > 0) and all(batched["tuned"].str.len() > 0)
    assert batched.equals(single)
    assert batched["prompt"][1].startswith("Name a colour") and batched["reference"][2] == "Hi!"
    assert pd.isna(batched["reference"][0])
    assert list(batched["base"]) != list(batched["tuned"])


def test_saved_table_has_one_line_per_prompt(tiny_model, smol_tokenizer):
    run = Run.open("cmp", load_config("smoke"))
    sampling = Sampling(max_new_tokens=4)
    frame = side_by_side({"base": (tiny_model, smol_tokenizer)}, CONVERSATIONS[:2], sampling)
    rows = read_jsonl(save_side_by_side(frame, run, sampling))
    assert [r["base"] for r in rows] == list(frame["base"])
    assert rows[0]["sampling"]["max_new_tokens"] == 4


def test_width_shortens_display_cells(tiny_model, smol_tokenizer):
    frame = side_by_side({"base": (tiny_model, smol_tokenizer)}, CONVERSATIONS[1:2], Sampling(max_new_tokens=2),
                         width=10)
    assert frame["prompt"][0] == "Name a co…"


@pytest.mark.parametrize("item", [[], [{"role": "assistant", "content": "x"}], {"messages": []}])
def test_conversations_that_cannot_be_answered_are_refused(item):
    with pytest.raises(ValueError):
        prompt_and_reference(item)


def test_examples_come_from_the_test_split_or_fixed_prompts(capsys):
    from labkit.infer.compare import FALLBACK_PROMPTS, example_conversations
    from labkit.runs import write_jsonl

    run = Run.open("examples", load_config("smoke"))
    assert example_conversations(run) == FALLBACK_PROMPTS
    assert "no prepared data" in capsys.readouterr().out
    rows = [{"id": str(i), "category": "ab"[i % 2], "messages": [{"role": "user", "content": str(i)}]}
            for i in range(6)]
    write_jsonl(run.path("data", "test.jsonl"), rows)
    assert [r["id"] for r in example_conversations(run, per_category=2)] == ["0", "2", "1", "3"]
