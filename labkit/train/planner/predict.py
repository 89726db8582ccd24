"""Predictions of the resource planner (see :mod:`labkit.train.planner`): memory, RAM, speed, time, disk."""

from __future__ import annotations

import os
from labkit.config import Config, ConfigError, LoraConfig
from labkit.train.planner.data import DataSize, run_data
from labkit.train.planner.memory import (Setup, activation_parts, evaluation_parts, optimizer_bytes, training_parts,
                                         weights_bytes)
from labkit.train.planner.specs import CPU, CPU_GFLOPS_PER_CORE, GIB, GpuSpec, ModelShape, model_shape

GB = 1e9
CUDA_CONTEXT_GIB = 0.5       # CUDA context and kernels: outside torch's allocator, so not in max_memory_allocated
ALLOCATOR_MARGIN = 0.08      # reserved / allocated on the benchmark's labkit rows was 1.03-1.05; some slack
# Host RAM of a training process besides its tensors. CPU: Python, torch, transformers, TRL, PEFT and datasets
# imported (0.47 GiB, measured on the 2-core machine), plus RAM that no counted part explains and that grows with
# the model: about one more copy of the weights, calibrated on the cpu-demo reference run of 2026-12-05 (peak
# 2,393 MiB = 2.34 GiB; counted 0.47 + a 1.36 GiB training step, the rest 0.51 GiB = 1.02 x its 0.50 GiB of fp32
# weights; likely the checkpoint file's pages, which loading maps and the first forward keeps resident, not
# verified) and checked on a smoke run (a 3M-parameter model: 0.58 GiB predicted, 0.60 measured). The fixed
# 1.31 GiB used before was calibrated before the LM head moved to the trained positions, and over-predicted small
# runs threefold (benchmarks/plan_accuracy.py). CUDA: an estimate (torch's CUDA libraries, Unsloth, two dataloader
# workers).
CPU_RUNTIME_GIB = 0.47
CPU_UNATTRIBUTED_PER_WEIGHT = 1.02
CUDA_RUNTIME_GIB = 3.0
# Achieved fraction of the device's dense 16-bit peak, per (backend, 4-bit), from the 1B-shape rows on one H200
# (reports/gpu/session6-7 for Unsloth and transformers bf16; session 2 for transformers QLoRA; the 3B rows
# are left out of the calibration and serve as its check). Other GPUs are assumed to reach the same fraction
# of their own peak: not measured (a T4 most likely reaches less).
EFFICIENCY = {("unsloth", False): 0.390, ("unsloth", True): 0.363,
              ("transformers", False): 0.237, ("transformers", True): 0.170}
SHARD_BYTES = 1 << 30        # labkit.export.merge.DEFAULT_SHARD_BYTES
EXPORT_RAM_OVERHEAD = 1.0 * GB
GGUF_BYTES_PER_PARAM = {"f16": 2.0, "q8_0": 34 / 32, "q4_k_m": 0.6}   # as labkit.export.resources
TOKENIZER_BYTES = 20e6       # tokenizer files saved with every checkpoint and adapter (Llama 3's: 17 MB)

LORA_TARGETS = {"all-linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                "attention": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}


def lora_targets(lora: LoraConfig, shape: ModelShape) -> tuple[str, ...]:
    if isinstance(lora.target_modules, str):
        return LORA_TARGETS[lora.target_modules]
    known = set(shape.linear_shapes())
    unknown = [name for name in lora.target_modules if name not in known]
    if unknown:
        raise ConfigError(f"lora.target_modules: the planner knows {', '.join(sorted(known))}, not "
                          f"{', '.join(unknown)}")
    return tuple(lora.target_modules)


def lora_params(lora: LoraConfig, shape: ModelShape) -> int:
    """r x (in + out) for every adapted projection of every layer."""
    sizes = shape.linear_shapes()
    return shape.layers * sum(lora.r * sum(sizes[name]) for name in lora_targets(lora, shape))


def setup_for(cfg: Config, device: str, spec: GpuSpec | None, data: DataSize, shape: ModelShape) -> Setup:
    """What labkit.loading and labkit.train would choose for ``cfg`` on this device."""
    m, t, d = cfg.model, cfg.train, cfg.data
    cuda = device != CPU
    if m.load_in_4bit and not cuda:
        raise ConfigError("model.load_in_4bit=true needs a CUDA GPU (bitsandbytes 4-bit); plan it with --gpu T4 "
                          "(or another GPU), or set model.load_in_4bit=false for the CPU")
    backend = "unsloth" if cuda and m.backend != "transformers" else "transformers"
    if m.dtype != "auto":
        dtype = m.dtype
    else:
        dtype = ("bfloat16" if spec.bf16 else "float16") if cuda else "float32"
    micro, accum = (1, t.batch_size * t.grad_accum) if d.packing else (t.batch_size, t.grad_accum)
    # labkit.train.trainer: the head at trained positions on the CPU (HEAD_AT_TRAINED_POSITIONS), fused on CUDA
    loss = "trained_positions" if not cuda else ("fused_unsloth" if backend == "unsloth" else "fused_trl")
    eval_len = int(min(d.max_seq_length, data.eval_p90_tokens))
    return Setup(device="cuda" if cuda else "cpu", backend=backend, dtype=dtype, four_bit=m.load_in_4bit, loss=loss,
                 checkpointing=t.gradient_checkpointing, offload=t.gradient_checkpointing and backend == "unsloth",
                 flash_attention=cuda, micro_batch=micro, accum=accum, seq=d.max_seq_length,
                 eval_batch=t.batch_size, eval_len=eval_len,
                 lora_params=lora_params(cfg.lora, shape), lora_dropout=cfg.lora.dropout,
                 lora_targets=lora_targets(cfg.lora, shape), optim=t.optim, trained_share=data.trained_share,
                 eval_trained_share=data.eval_trained_share)


# ------------------------------------------------------------------ speed and time

def flops_per_token(shape: ModelShape, s: Setup, seq: int) -> float:
    """Forward 2N, backward 2N (input gradients only: the base is frozen), recomputation 2N of the layers under
    checkpointing, LoRA's own 6 x its parameters, and attention (causal halves it where kernels skip the masked
    half, on CUDA)."""
    n = shape.layer_linear_params + shape.head_params
    matmul = 4 * n + (2 * shape.layer_linear_params if s.checkpointing else 0) + 6 * s.lora_params
    attention_fwd = 4 * seq * shape.q_dim * shape.layers * (0.5 if s.flash_attention else 1.0)
    return matmul + attention_fwd * (3 + (1 if s.checkpointing else 0))


def tokens_per_second(shape: ModelShape, s: Setup, spec: GpuSpec | None, seq: int) -> float:
    if spec is None:
        achieved = CPU_GFLOPS_PER_CORE * 1e9 * (os.cpu_count() or 2)
    else:
        achieved = spec.peak_tflops * 1e12 * EFFICIENCY[(s.backend, s.four_bit)]
    return achieved / flops_per_token(shape, s, seq)


def schedule(cfg: Config, s: Setup, data: DataSize) -> dict:
    """Tokens a step computes (padded or packed), steps per epoch and steps of this run."""
    d, t = cfg.data, cfg.train
    row_compute = d.max_seq_length if d.packing else min(d.max_seq_length, data.p90_tokens)
    row_kept = min(d.max_seq_length, data.mean_tokens)
    rows_per_step = s.micro_batch * s.accum
    step_tokens = rows_per_step * row_compute
    epoch_steps = None
    if data.rows is not None:
        epoch_tokens = data.rows * row_kept
        epoch_steps = max(1, round(epoch_tokens / step_tokens)) if d.packing else max(1, -(-data.rows // rows_per_step))
    run_steps = t.max_steps or (round(epoch_steps * t.epochs) if epoch_steps else None)
    return {"rows_per_step": rows_per_step, "row_tokens_computed": round(row_compute), "tokens_per_step":
            round(step_tokens), "steps_per_epoch": epoch_steps, "steps_this_run": run_steps,
            "train_rows": data.rows, "mean_row_tokens": round(data.mean_tokens, 1), "data_from": data.source}


# ------------------------------------------------------------------ disk and export

def disk_and_export(shape: ModelShape, cfg: Config, s: Setup) -> dict:
    adapter = s.lora_params * 4 + TOKENIZER_BYTES
    checkpoint = adapter + optimizer_bytes(s.lora_params, s.optim)  # + scheduler and RNG states (kB)
    kept = cfg.train.save_total_limit if cfg.train.save_steps else 0
    params = shape.total_params
    largest = max(shape.embedding_params, *(a * b for a, b in shape.linear_shapes().values()))
    disk = {"checkpoints_gb": kept * checkpoint / GB, "checkpoints_kept": kept, "adapter_gb": adapter / GB,
            "merged_16bit_gb": params * 2 / GB,
            **{f"gguf_{name}_gb": params * b / GB for name, b in GGUF_BYTES_PER_PARAM.items()}}
    disk["total_gb"] = sum(v for k, v in disk.items() if k.endswith("_gb"))
    export = {"merge_ram_gb": (EXPORT_RAM_OVERHEAD + SHARD_BYTES + largest * (2 + 4 + 4)) / GB,
              "parity_check_ram_gb": (EXPORT_RAM_OVERHEAD + params * 2) / GB,
              "note": "streaming merge: one 1 GiB output shard plus the largest weight in fp32 (labkit.export); "
                      "the parity check loads one model at a time in bf16 at least"}
    return {"disk": disk, "export": export}


# ------------------------------------------------------------------ the plan

def _hours(steps: int | None, step_s: float) -> float | None:
    return None if steps is None else round(steps * step_s / 3600, 4)


def _gib(parts: dict[str, float]) -> dict[str, float]:
    return {k: round(v / GIB, 3) for k, v in parts.items()}


def host_ram(shape: ModelShape, s: Setup, train_peak: float, eval_peak: float) -> dict[str, float]:
    if s.device == "cpu":
        return {"runtime": CPU_RUNTIME_GIB * GIB,
                "unattributed_calibrated": CPU_UNATTRIBUTED_PER_WEIGHT * weights_bytes(shape, s),
                "training_or_evaluation": max(train_peak, eval_peak)}
    offload = activation_parts(shape, s)["offloaded_to_host"]
    load = min(shape.total_params * 2, 5 * GB)  # one safetensors shard at a time while loading (hub shards <= 5 GB)
    return {"runtime": CUDA_RUNTIME_GIB * GIB, "loading_one_shard": load, "unsloth_offloaded_checkpoints": offload}


def predict(cfg: Config, spec: GpuSpec | None, run: str | None = None) -> dict:
    """Every prediction of :func:`plan`, without the verdict (``spec`` None: the CPU)."""
    shape, shape_from = model_shape(cfg.model.name)
    data = run_data(cfg, run)
    s = setup_for(cfg, CPU if spec is None else spec.name, spec, data, shape)
    train, evaluation = training_parts(shape, s), evaluation_parts(shape, s)
    eval_kind = "labkit.train.evaluate_loss and the Trainer's evaluation (loss only)"
    train_peak, eval_peak = sum(train.values()), sum(evaluation.values())
    sched = schedule(cfg, s, data)
    tps = tokens_per_second(shape, s, spec, sched["row_tokens_computed"])
    step_s = sched["tokens_per_step"] / tps
    ram = host_ram(shape, s, train_peak, eval_peak)
    return {
        "device": spec.name if spec else CPU, "measured_device": bool(spec and spec.measured) or spec is None,
        "model": {"name": cfg.model.name, "shape_from": shape_from, **shape.to_dict()},
        "setup": {"backend": s.backend, "dtype": s.dtype, "load_in_4bit": s.four_bit, "loss": s.loss,
                  "gradient_checkpointing": s.checkpointing, "unsloth_offload": s.offload,
                  "micro_batch": s.micro_batch, "grad_accum": s.accum, "max_seq_length": s.seq,
                  "lora_params": s.lora_params, "optim": s.optim, "eval_batch": s.eval_batch,
                  "eval_padded_length": s.eval_len},
        "memory": {"training_step_gib": round(train_peak / GIB, 3), "evaluation_gib": round(eval_peak / GIB, 3),
                   "peak_gib": round(max(train_peak, eval_peak) / GIB, 3),
                   "training_parts_gib": _gib(train), "evaluation_parts_gib": _gib(evaluation),
                   "evaluation_peak_in": eval_kind},
        "ram": {"peak_gib": round(sum(ram.values()) / GIB, 3), "parts_gib": _gib(ram)},
        "speed": {"tokens_per_s": round(tps, 1), "step_s": round(step_s, 3),
                  "flops_per_token": flops_per_token(shape, s, sched["row_tokens_computed"]), **sched,
                  "epoch_h": _hours(sched["steps_per_epoch"], step_s),
                  "run_h": _hours(sched["steps_this_run"], step_s)},
        **disk_and_export(shape, cfg, s),
    }


def with_changes(cfg: Config, changes: dict) -> Config:
    """A copy of ``cfg`` with ``{"section.field": value}`` changes (validated like any config)."""
    raw = cfg.to_dict()
    for key, value in changes.items():
        section, name = key.split(".", 1)
        raw[section][name] = value
    return Config.from_dict(raw)


