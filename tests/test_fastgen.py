"""Generation paths (labkit.infer.fastgen): the CPU keeps today's path; the sorted, memory-sized batches (dynamic
and static cache) give the same greedy answers; path choice, memory sizing, and the eval_speed benchmark's CPU smoke
run."""

from __future__ import annotations

import pytest

from labkit.infer.fastgen import (CPU_MC_ITEMS, choose_path, kv_bytes_per_token, length_order, mc_batch_items,
                                  prefill_bytes_per_token, rows_for_memory, streaming_kwargs)
from labkit.infer.generate import Sampling, generate_chat

pytestmark = pytest.mark.usefixtures("one_thread_module")

CONVERSATIONS = [[{"role": "user", "content": text}] for text in (
    "Hi", "What is the capital of France? Answer in one word.", "Count to three.",
    "Write a long sentence about rivers, mountains, forests and the sea, please, with detail.", "2+2?")]


def test_cpu_keeps_todays_path_and_refuses_gpu_paths(tiny_model):
    assert choose_path(tiny_model).name == "transformers"
    assert "on cpu" in choose_path(tiny_model).reason
    with pytest.raises(ValueError, match="'continuous' needs a CUDA GPU"):
        choose_path(tiny_model, requested="continuous")
    with pytest.raises(ValueError, match="not one of"):
        choose_path(tiny_model, requested="fast")
    assert streaming_kwargs(tiny_model, choose_path(tiny_model)) == {}


@pytest.mark.parametrize("path", ["batched", "static"])
def test_sorted_batches_equal_todays_greedy_answers_in_input_order(tiny_model, smol_tokenizer, capsys, path):
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for p in tiny_model.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # a random tiny model that says more than blank lines
    sampling = Sampling(max_new_tokens=12)
    today = generate_chat(tiny_model, smol_tokenizer, CONVERSATIONS, sampling, batch_size=2)
    new = generate_chat(tiny_model, smol_tokenizer, CONVERSATIONS, sampling, batch_size=3, path=path)
    assert new == today
    assert len(set(today)) > 1 and all(today)  # real, different answers (a random model's tokens)
    assert f"generation path '{path}'" in capsys.readouterr().out


def test_unsloth_models_are_recognised_by_their_config(tiny_model):
    from labkit.infer.fastgen import is_unsloth_model

    assert not is_unsloth_model(tiny_model)
    tiny_model.config.unsloth_version = "2026.11"
    assert is_unsloth_model(tiny_model)


def test_rows_for_memory_counts_kv_cache_and_logits(tiny_model):
    config = tiny_model.config
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size //
                                                                            config.num_attention_heads) * 4
    assert kv_bytes_per_token(tiny_model) == per_token
    assert prefill_bytes_per_token(tiny_model) == 3 * config.intermediate_size * 4   # gate, up, product; fp32
    per_row = (per_token + 3 * config.intermediate_size * 4) * 100 + 8 * config.vocab_size
    assert rows_for_memory(tiny_model, 100, free_bytes=2 * 10 * per_row) == 10   # half the free memory
    assert rows_for_memory(tiny_model, 100, free_bytes=2 * 10 * per_row - 1) == 9
    assert rows_for_memory(tiny_model, 100, free_bytes=1) == 1
    assert rows_for_memory(tiny_model, 100, free_bytes=10 ** 15) == 512
    assert length_order([3, 9, 1, 9]) == [1, 3, 0, 2]


def test_mc_batches_on_the_cpu_hold_at_most_eight_items(tiny_model):
    assert CPU_MC_ITEMS == 8
    assert mc_batch_items(tiny_model, 16) == 8      # eval.batch_size's default, capped (8 measured fastest)
    assert mc_batch_items(tiny_model, 4) == 4       # a smaller setting is kept


def test_eval_speed_benchmark_smoke_on_cpu(capsys):
    from benchmarks.eval_speed import main

    main(["--tiny", "--items", "6", "--mc-items", "6", "--max-new-tokens", "6"])
    out = capsys.readouterr().out
    assert "| generative suite |" in out and "| MC scoring |" in out
    assert "equal greedy outputs (batched): 6/6" in out and "equal greedy outputs (static): 6/6" in out
    assert "equal MC predictions (one row, batch 8): 6/6" in out
    assert "path batched: 6 items" in out and "equal to today's: 6/6" in out  # printed as each path finishes


class _CudaModel:
    """Stands in for a model on a GPU: only what choose_path reads."""

    def __init__(self, **config):
        from types import SimpleNamespace

        self.config = SimpleNamespace(**config)

    def parameters(self):
        from types import SimpleNamespace

        yield SimpleNamespace(device=SimpleNamespace(type="cuda"))

    def generate_batch(self, *args, **kwargs):
        raise AssertionError("not called by choose_path")


def test_cuda_keeps_todays_path_unless_the_fast_paths_are_turned_on(monkeypatch):
    monkeypatch.delenv("LABKIT_FAST_GENERATION", raising=False)
    path = choose_path(_CudaModel(), Sampling(), prompts=40)
    assert path.name == "transformers" and "LABKIT_FAST_GENERATION=1" in path.reason


def test_cuda_path_choice_and_reasons(monkeypatch):
    monkeypatch.setenv("LABKIT_FAST_GENERATION", "1")
    greedy, sampled = Sampling(), Sampling(temperature=0.7)
    for sampling in (greedy, sampled):
        path = choose_path(_CudaModel(), sampling, prompts=40)
        assert path.name == "batched" and "batches sized from free GPU memory" in path.reason
    assert choose_path(_CudaModel(), greedy, prompts=1).name == "batched"
    assert choose_path(_CudaModel(unsloth_version="2026.11"), greedy, prompts=40).name == "unsloth"
    assert choose_path(_CudaModel(), greedy, requested="continuous").name == "continuous"
    with pytest.raises(ValueError, match="greedy only"):
        choose_path(_CudaModel(), sampled, requested="continuous")
    with pytest.raises(ValueError, match="needs transformers >= 5 and a model without an unmerged adapter"):
        choose_path(_NoBatchCudaModel(), greedy, requested="continuous")


class _NoBatchCudaModel:
    """A model on a GPU without ``generate_batch`` (a PEFT wrapper, or transformers before 5)."""

    parameters = _CudaModel.parameters
    config = None


def test_streaming_uses_the_static_cache_only_when_asked(tiny_model):
    from labkit.infer.fastgen import GenerationPath

    assert streaming_kwargs(tiny_model, GenerationPath("batched", "test")) == {}
    assert streaming_kwargs(tiny_model, GenerationPath("static", "test")) == {"cache_implementation": "static"}
