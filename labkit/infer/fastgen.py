"""Generation on a GPU that keeps the GPU busy: the path is picked per model, with a printed reason and a fallback.

Measured before (issue 21, H200, SmolLM2-135M): evaluation's greedy answers kept the GPU 10-31% busy, because
the host drives one small decode step at a time for a batch of 16, and every batch decodes until its longest
answer ends. What labkit does against that on CUDA:

- ``batched``: ``model.generate`` with its usual (dynamic) KV cache, prompts sorted longest first and batches as
  large as the free GPU memory holds (:func:`rows_for_memory`), so one host step drives hundreds of rows. Nothing
  is compiled, so nothing waits for compilation;
- ``unsloth``: a model that came from Unsloth gets Unsloth's inference mode (``FastLanguageModel.for_inference``,
  its fused decode kernels), then the same sorted, memory-sized batches;
- ``continuous`` (asked for by name): transformers' continuous batching (``model.generate_batch``, greedy only): a
  paged KV cache sized from the free GPU memory, a finished answer leaves the batch at once and a waiting prompt
  takes its place; :data:`CONTINUOUS_SETTINGS` are passed to its ``ContinuousBatchingConfig``;
- ``static`` (asked for by name): ``model.generate`` with ``cache_implementation="static"``, which transformers
  compiles (torch.compile) on CUDA, in the same sorted batches. It compiles again for each new batch shape.

On the CPU (and MPS) the path stays ``transformers``: today's padded ``model.generate`` batches, unchanged.
vLLM is not used even when installed: it loads its own copy of the weights from disk, and evaluation generates
from a model in memory (the adapter merged in); the printed reason says so.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

PATHS = ("auto", "transformers", "batched", "static", "continuous", "unsloth")
_announced: set[tuple[int, str]] = set()


@dataclass(frozen=True)
class GenerationPath:
    name: str      # one of PATHS but "auto"
    reason: str


def is_unsloth_model(model) -> bool:
    """Unsloth's loaders record their version in the model config (``unsloth_version``)."""
    config = getattr(model, "config", None)
    return getattr(config, "unsloth_version", None) is not None


# The faster CUDA paths are opt-in until benchmarks/eval_speed.py has checked on a GPU that they give the same
# greedy answers as the padded batches (issue 21).
FAST_SWITCH = "LABKIT_FAST_GENERATION"

# Passed to transformers' ContinuousBatchingConfig by the "continuous" path. Its defaults leave CUDA graphs and the
# asynchronous (double-buffered) loop off whenever the attention needs a mask (SDPA, eager): the host then prepares
# every step while the GPU waits, which is what this path is meant to avoid.
CONTINUOUS_SETTINGS: dict = {"use_cuda_graph": True, "use_async_batching": True}


def choose_path(model, sampling=None, requested: str = "auto", prompts: int = 1) -> GenerationPath:
    """The generation path for ``model`` (see the module docstring); ``requested`` other than "auto" is obeyed
    where it can run and otherwise refused with the reason. ``prompts`` is kept for callers; every path batches."""
    if requested not in PATHS:
        raise ValueError(f"generation path {requested!r} is not one of {', '.join(PATHS)}")
    device = next(model.parameters()).device.type
    greedy = sampling is None or sampling.temperature <= 0
    if requested != "auto":
        if requested in ("continuous", "unsloth") and device != "cuda":
            raise ValueError(f"generation path {requested!r} needs a CUDA GPU (the model is on {device})")
        if requested == "continuous" and not greedy:
            raise ValueError("generation path 'continuous' is greedy only here; use 'batched' for sampling")
        if requested == "continuous" and not hasattr(model, "generate_batch"):
            raise ValueError("generation path 'continuous' needs transformers >= 5 and a model without an unmerged "
                             "adapter (merge it first); use 'batched'")
        return GenerationPath(requested, "asked for")
    if device != "cuda":
        return GenerationPath("transformers", f"on {device}: padded model.generate batches, as before")
    if os.environ.get(FAST_SWITCH, "0") != "1":   # off until eval_speed has compared the outputs on a GPU
        return GenerationPath("transformers", f"padded model.generate batches ({FAST_SWITCH}=1 turns on the faster "
                                              "CUDA paths, not yet measured on a GPU)")
    if is_unsloth_model(model):
        return GenerationPath("unsloth", "the model came from Unsloth: its inference mode, sorted memory-sized batches")
    vllm = " (vLLM is installed but loads weights from disk, not this model in memory)" \
        if importlib.util.find_spec("vllm") else ""
    return GenerationPath("batched", "on CUDA: prompts sorted by length, batches sized from free GPU memory" + vllm)


def announce(model, path: GenerationPath) -> None:
    """Print the chosen path once per model and path."""
    key = (id(model), path.name)
    if key not in _announced:
        _announced.add(key)
        print(f"labkit: generation path '{path.name}' ({path.reason})")


def _text_config(model):
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def kv_bytes_per_token(model) -> int:
    """Bytes of KV cache one token takes in every layer (keys and values)."""
    config = _text_config(model)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = next(model.parameters()).element_size()
    return 2 * config.num_hidden_layers * heads * head_dim * element


def prefill_bytes_per_token(model) -> int:
    """The widest activation of one layer's forward per token: the MLP's gate, up and their product (the prefill
    of a large batch holds them for every prompt token at once)."""
    config = _text_config(model)
    width = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    return 3 * width * next(model.parameters()).element_size()


def rows_for_memory(model, tokens_per_row: int, free_bytes: int, share: float = 0.5, cap: int = 512) -> int:
    """How many rows of ``tokens_per_row`` fit in ``share`` of ``free_bytes``: each row's KV cache, the prefill's
    widest activation and float32 logits for one step (the vocabulary's width), at least 1 and at most ``cap``."""
    per_token = kv_bytes_per_token(model) + prefill_bytes_per_token(model)
    per_row = per_token * tokens_per_row + 4 * _text_config(model).vocab_size * 2
    return max(1, min(cap, int(free_bytes * share) // per_row))


def free_gpu_bytes(device) -> int:
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return free


def length_order(lengths: list[int]) -> list[int]:
    """Indices, longest first (so each batch pads little and the memory peak comes first)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def streaming_kwargs(model, path: GenerationPath) -> dict:
    """Extra ``generate`` arguments for one streamed reply (the chat): one row, so nothing to batch; Unsloth's
    inference mode for an Unsloth model, the static cache when it was asked for, else nothing."""
    if path.name == "transformers":
        return {}
    announce(model, path)
    if path.name == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
        return {}
    return {"cache_implementation": "static"} if path.name == "static" else {}


# Items per multiple-choice batch off CUDA, at most: on 2 CPU cores (SmolLM2-135M, 100 PIQA / OpenBookQA items, the
# one-pass tree layout) 8 items took 7.6 / 3.3 s, against 8.0 / 3.7 s with 4, 9.0 / 3.5 s with 16, 13 / 4.5 s with 32.
CPU_MC_ITEMS = 8


def mc_batch_items(model, default: int, tokens_per_row: int = 512, choices: int = 4) -> int:
    """Items per multiple-choice scoring batch: off CUDA ``default`` up to :data:`CPU_MC_ITEMS` (longer batches pad
    more and leave the CPU's caches), else as many as half the free GPU memory holds (each item brings ``choices``
    rows of up to ``tokens_per_row`` tokens)."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return min(default, CPU_MC_ITEMS)
    return max(default, rows_for_memory(model, tokens_per_row, free_gpu_bytes(device), cap=1024) // choices)
