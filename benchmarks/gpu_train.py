"""GPU training speed and memory: labkit on Unsloth and on transformers + PEFT (bf16 LoRA, QLoRA), and a bare
Unsloth loop, on one random-initialised model of a real shape (Llama-3.2-1B by default).

    python -m benchmarks.gpu_train --tokenizer DIR --out DIR [--steps 8] [--warmup 3] [--peak-tflops 790]
    python -m benchmarks.gpu_train --tiny --device cpu --tokenizer DIR --out DIR   (CPU smoke run)

``--tokenizer`` is a folder with a tokenizer (any: the token ids are random and only need the model's
vocabulary; the tokenizer is there because labkit's loaders load one). Throughput does not depend on the
weight values, so the model is built from a config and saved to ``<out>/model`` first.

Every case runs in its own process (fresh CUDA memory statistics; Unsloth patches transformers globally on
import, so the transformers cases run in processes that never import it). The labkit cases go through
``labkit.train.loading.load_for_training`` and ``labkit.train.trainer.build_trainer`` (TRL SFTTrainer + labkit's callbacks);
the bare case is FastLanguageModel + get_peft_model + AdamW in a hand-written loop, the reference for
labkit's overhead. Each step trains ``batch x seq_len`` random tokens, all of them in the loss.

Timing: wall clock between the ends of optimizer steps (CUDA synchronised), over the steps after
``--warmup``; so labkit's logging and callbacks are inside the measured time. MFU counts 4 x (non-embedding
parameters + LM head) FLOPs per token: forward (2N) plus the activation gradients (2N); with frozen base
weights there are no weight gradients, and the recomputation of gradient checkpointing is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import gpu_clocks

LLAMA_3_2_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
                "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
                "rope_theta": 500000.0, "max_position_embeddings": 8192}
LLAMA_3_2_3B = {**LLAMA_3_2_1B, "hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 24}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 49152, "tie_word_embeddings": True, "max_position_embeddings": 512}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The 1B shape's layer count on a toy width: the same modules and LoRA tensors (16 layers x 7 targets), so the same
# per-tensor host work per step (optimizer, clipping, zero_grad, module walks), with almost no arithmetic. For
# measuring host overhead on a CPU (``--device cpu --shape host``), where the GPU path's host work cannot be seen.
HOST = {**TINY, "num_hidden_layers": LLAMA_3_2_1B["num_hidden_layers"]}
SHAPES = {"1b": LLAMA_3_2_1B, "3b": LLAMA_3_2_3B, "tiny": TINY, "host": HOST}
PEAK_TFLOPS = {"H200": 790.0, "H100": 990.0}   # dense bf16, SXM


@dataclass(frozen=True)
class Case:
    label: str
    backend: str            # "unsloth" or "transformers"
    four_bit: bool
    bare: bool = False      # a hand-written Unsloth loop instead of labkit
    plain: bool = False     # plain transformers + PEFT in a hand-written loop (the field's baseline, no labkit)
    trl_only: bool = False  # Unsloth + TRL SFTTrainer as in Unsloth's notebooks (no labkit)
    own_loss: bool = False  # labkit with the model's own loss instead of TRL's fused LM head
    cuda_only: bool = True
    variants: tuple = ()


CASES = {
    "labkit-unsloth-bf16": Case("labkit on Unsloth, bf16 LoRA", "unsloth", False),
    "bare-unsloth-bf16": Case("bare Unsloth loop, bf16 LoRA (no labkit)", "unsloth", False, bare=True),
    "plain-hf-bf16": Case("plain transformers + PEFT loop, bf16 LoRA (no labkit)", "transformers", False, plain=True,
                          cuda_only=False),
    "labkit-unsloth-qlora": Case("labkit on Unsloth, QLoRA (nf4)", "unsloth", True),
    "plain-hf-qlora": Case("plain transformers + PEFT loop, QLoRA (bnb nf4, double quant; no labkit)", "transformers",
                           True, plain=True),
    "labkit-hf-bf16": Case("labkit on transformers + PEFT, bf16 LoRA (SDPA)", "transformers", False, cuda_only=False),
    "labkit-hf-qlora": Case("labkit on transformers + PEFT, QLoRA (bnb nf4, double quant)", "transformers", True),
    "unsloth-trl-bf16": Case("Unsloth + TRL SFTTrainer, bf16 LoRA (Unsloth's notebook recipe, no labkit)", "unsloth",
                             False, trl_only=True),
}
LABKIT_LOGGING_STEPS = 10   # the GPU presets' value (labkit/presets/colab-*.yaml)
BARE_PHASES = ("forward_backward", "clip", "optimizer_zero_grad")   # the bare loop's host time per step, by phase
TRAINING_MARKER = "labkit-bench: model loaded, training"
# Variants of a labkit case, as suffixes of its name (``labkit-unsloth-bf16:ownloss``). The overhead forensics'
# variants (adapter-check, autocast and dataloader switches) were retired with labkit.bench.gpu_overhead (issue 19;
# their results stay in reports/gpu/ as history).
VARIANTS = {
    "ownloss": "model's own loss (no TRL fused LM head)",   # also the automatic retry when training fails
    "fusedhead": "TRL's fused LM head (labkit's default before: Unsloth keeps its own loss now)",
    "log1": "train.logging_steps=1",
}
OWN_LOSS = ":ownloss"


def case_for(name: str) -> Case:
    """``CASES[name]``, or a variant for ``name:variant[:variant...]`` (see ``VARIANTS``); ``name#2`` runs a case
    again (its own row: a second sample in the same run)."""
    name, _, repeat = name.partition("#")
    if repeat:
        case = case_for(name)
        return replace(case, label=f"{case.label} (run {repeat})")
    base_name, *variants = name.split(":")
    base = CASES[base_name]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"{name}: unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if variants and (base.bare or base.plain or base.trl_only):
        raise ValueError(f"{name}: only labkit cases have variants")
    if not variants:
        return base
    label = base.label + "; " + "; ".join(VARIANTS[v] for v in variants)
    return replace(base, label=label, own_loss="ownloss" in variants, variants=tuple(variants))


# ------------------------------------------------------------------ the model (built once, in its own process)

def build_model(args) -> dict:
    """Save a random model of the chosen shape plus the tokenizer to ``args.model_dir``; return its counts."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    shape = SHAPES[args.shape]
    config = LlamaConfig(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    device = "cuda" if args.device == "cuda" else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(args.model_dir)
    tokenizer.save_pretrained(args.model_dir)
    embedding = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())   # tied: the LM head is the embedding, counted once
    head = model.get_output_embeddings().weight.numel()
    info = {"shape": shape, "params_total": total, "params_non_embedding": total - embedding,
            "params_lm_head": head, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None}
    info["flops_per_token"] = 4 * (info["params_non_embedding"] + head)
    return info


# ------------------------------------------------------------------ the cases (each in a child process)

def random_rows(count: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict]:
    """Full-length rows of random tokens, every token trained (a prepared run's rows after tokenization)."""
    import torch

    ids = torch.randint(0, vocab, (count, seq_len), generator=torch.Generator().manual_seed(seed))
    return [{"input_ids": row.tolist(), "assistant_masks": [1] * seq_len} for row in ids]


def bench_overrides(args, case: Case) -> dict:
    dtype = "bfloat16" if args.device == "cuda" else "float32"
    return {"model.name": args.model_dir, "model.backend": case.backend, "model.load_in_4bit": case.four_bit,
            "model.dtype": dtype, "model.device": args.device, "data.max_seq_length": args.seq_len,
            "data.packing": False, "lora.r": args.rank, "lora.alpha": 2 * args.rank, "lora.dropout": 0.0,
            "lora.target_modules": TARGETS, "train.batch_size": args.batch_size, "train.grad_accum": 1,
            "train.max_steps": args.warmup + args.steps, "train.lr": 2e-4, "train.lr_scheduler": "constant",
            "train.warmup_ratio": 0.0, "train.gradient_checkpointing": True, "train.optim": "adamw_torch",
            "train.eval_steps": 0, "train.save_steps": 0, "train.logging_steps": LABKIT_LOGGING_STEPS,
            "train.early_stopping_patience": 0}


def memory() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"max_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "max_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def sync_steps(args, every_step: bool = False) -> set[int] | None:
    """The (1-based) steps after which the bench waits for the GPU before it reads the clock: the two ends of the
    timed window, which is all that tokens/s needs (``_result``); None (``every_step``) waits after every step.

    Waiting after every step was the timing of sessions 2 and 3: it leaves the GPU idle while the host prepares
    the next step, which a training loop that does not wait for the device (labkit's logs read the GPU only every
    ``logging_steps``) hides behind the GPU's queue. It costs the loop with the longer host path between steps
    more, so labkit's overhead reads higher under it."""
    return None if every_step else {max(args.warmup, 1), args.warmup + args.steps}


def _wall_clock_callback(stamps: list[float], sync_at: set[int] | None = None, usage: list | None = None):
    """A callback that appends each step end's time to ``stamps`` (and the process's resource usage to ``usage``)."""
    from transformers import TrainerCallback

    class WallClock(TrainerCallback):
        """End-of-step timestamps: everything labkit and TRL do between steps falls inside the window."""

        def on_step_end(self, args, state, control, **kwargs):
            if sync_at is None or state.global_step in sync_at:
                _sync()
            stamps.append(time.perf_counter())
            if usage is not None:
                usage.append(host_sample())

    return WallClock()


def case_labkit(args, case: Case) -> dict:
    if case.backend == "unsloth":
        import unsloth  # noqa: F401  (before transformers / TRL, which _case_labkit imports)
    return _case_labkit(args, case)


def _case_labkit(args, case: Case) -> dict:
    import torch

    from labkit.train.callbacks import read_log
    from labkit.config import load_config
    from labkit.train.loading import load_for_training
    from labkit.runs import Run
    from labkit.train.trainer import build_trainer

    overrides = bench_overrides(args, case)
    if "log1" in case.variants:
        overrides["train.logging_steps"] = 1
    cfg = load_config("cpu-demo", overrides)
    run = Run.open("bench", cfg, root=Path(tempfile.mkdtemp(prefix="labkit-gpu-bench-")))
    loaded = load_for_training(cfg)
    load_memory = memory()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    rows = random_rows(args.batch_size * (args.warmup + args.steps), args.seq_len, args.vocab)
    trainer = build_trainer(cfg, run, loaded, rows, [])
    if case.own_loss:
        trainer.use_fused_head = False
    if "fusedhead" in case.variants:
        trainer.use_fused_head = True
    stamps: list[float] = []
    usage: list = []
    trainer.add_callback(_wall_clock_callback(stamps, sync_steps(args, args.step_sync), usage))
    print(TRAINING_MARKER, flush=True)
    trainer.train()
    logged = [r for r in read_log(run.path("logs", "train_log.jsonl")) if r.get("kind") == "train"]
    step_tokens = args.batch_size * args.seq_len   # every row is full length: no padding
    result = _result(args, stamps, [step_tokens] * len(stamps), load_memory, usage)
    if any(r["tokens"] != step_tokens * _window(logged, i) for i, r in enumerate(logged)):
        raise RuntimeError(f"labkit counted {[r['tokens'] for r in logged]} tokens per logged window; expected "
                           f"{step_tokens} a step")
    timed = [r for i, r in enumerate(logged) if r["step"] - _window(logged, i) >= args.warmup]
    if timed:   # labkit's own step timing (previous step end to step end) of the logged windows after the warm-up
        result["labkit_logged_tokens_per_s"] = (sum(r["tokens"] for r in timed)
                                                / sum(r["step_seconds"] for r in timed))
    result.update(describe=loaded.describe(), fused_head=trainer.use_fused_head,
                  padding_free=bool(getattr(trainer.args, "padding_free", False)),
                  final_loss=logged[-1]["loss"], trainable_params=loaded.params.trainable,
                  attention=getattr(loaded.model.config, "_attn_implementation", None),
                  gradient_checkpointing=bool(getattr(trainer.model, "is_gradient_checkpointing", False)))
    return result


def _window(logged: list[dict], index: int) -> int:
    """How many optimizer steps the logged record ``index`` covers."""
    return logged[index]["step"] - (logged[index - 1]["step"] if index else 0)


def _unsloth_model(args, case: Case):
    """(model, tokenizer) from Unsloth's own loader and adapter, as its notebooks write them (no labkit)."""
    import torch
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=args.model_dir, max_seq_length=args.seq_len,
                                                         dtype=torch.bfloat16, load_in_4bit=case.four_bit)
    model = FastLanguageModel.get_peft_model(model, r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                             target_modules=TARGETS, bias="none", random_state=42,
                                             use_gradient_checkpointing="unsloth", max_seq_length=args.seq_len)
    return model, tokenizer


def case_bare_unsloth(args, case: Case) -> dict:
    """The reference without labkit: Unsloth's loader and adapter, AdamW, a plain loop."""
    model, _ = _unsloth_model(args, case)
    return _hand_loop(args, model, "bare Unsloth loop")


def case_plain_hf(args, case: Case) -> dict:
    """The field's baseline without labkit: transformers + PEFT as their docs show it (SDPA, gradient
    checkpointing, ``prepare_model_for_kbit_training`` for QLoRA, the model's own loss over full logits)."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    on_gpu = args.device == "cuda"
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16) if case.four_bit else None
    model = AutoModelForCausalLM.from_pretrained(
        args.model_dir, dtype=torch.bfloat16 if on_gpu else torch.float32, attn_implementation="sdpa",
        quantization_config=quant, device_map={"": 0} if on_gpu else None)
    checkpointing = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
    if case.four_bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, **checkpointing)
    else:
        model.gradient_checkpointing_enable(**checkpointing)
        model.enable_input_require_grads()
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                             target_modules=TARGETS, bias="none", task_type="CAUSAL_LM"))
    return _hand_loop(args, model, "plain transformers + PEFT loop")


def _hand_loop(args, model, describe: str) -> dict:
    rows = random_rows(args.batch_size * (args.warmup + args.steps), args.seq_len, args.vocab)
    return {**hand_loop(args, model, rows, every_step=args.step_sync), "describe": describe}


def hand_loop(args, model, rows: list[dict], on_step=None, autocast: bool = False,
              every_step: bool = False) -> dict:
    """AdamW over the trainable weights, grad clipping 1.0, one full batch of ``rows`` a step (all staged on the
    device first), timed like the labkit cases (also ``benchmarks.gpu_overhead``'s bare segments); ``on_step()``
    after each step if given; ``autocast`` runs the forward under bf16 autocast, as the Trainer does. The loss is
    read on the host every ``LABKIT_LOGGING_STEPS`` steps, as labkit logs it (``every_step``: every step, and
    the clock waits for the GPU after every step; see ``sync_steps``)."""
    import torch

    load_memory = memory()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if hasattr(model, "for_training"):   # an Unsloth model (its trainer may have left it in inference mode)
        model.for_training()
    model.train()
    bare = BareSteps(model, rows, args.batch_size, autocast=autocast)
    stamps, tokens, usage = [], [], []
    sync_at, read_every = sync_steps(args, every_step), 1 if every_step else LABKIT_LOGGING_STEPS
    for step in range(len(bare.batches)):
        bare.step(step, read_loss=(step + 1) % read_every == 0)
        if sync_at is None or step + 1 in sync_at:
            _sync()
        stamps.append(time.perf_counter())
        usage.append(host_sample())
        tokens.append(bare.batches[step].numel())
        if on_step is not None:
            on_step()
    result = _result(args, stamps, tokens, load_memory, usage)
    result.update({f"{phase}_ms": 1000 * sum(times[args.warmup:]) / max(len(times) - args.warmup, 1)
                   for phase, times in bare.host.items()})
    result.update(final_loss=float(bare.loss.detach()), trainable_params=sum(p.numel() for p in bare.params))
    return result


class BareSteps:
    """The bare loop's steps: AdamW over the trainable weights, grad clipping 1.0, one batch of ``rows`` a step.

    Every batch is on the GPU before the first step: building one from Python lists and copying it from pageable
    memory each step would make the host wait for the GPU (a sync) and add host work, handicapping the reference.
    ``host`` collects the host seconds of each step by phase (``BARE_PHASES``; no sync inside)."""

    def __init__(self, model, rows: list[dict], batch_size: int, autocast: bool = False):
        import torch

        from labkit.train.lean_steps import trained_weights

        self.model, self.autocast = model, autocast
        self.params = trained_weights(model)
        self.optimizer = torch.optim.AdamW(self.params, lr=2e-4)
        self.device = next(p.device for p in self.params)
        self.batches = [torch.tensor([r["input_ids"] for r in rows[i:i + batch_size]], device=self.device)
                        for i in range(0, len(rows) - batch_size + 1, batch_size)]
        self.masks = [torch.ones_like(ids) for ids in self.batches]
        self.host = {phase: [] for phase in BARE_PHASES}
        self.loss = None

    def step(self, index: int, read_loss: bool = False) -> None:
        """One optimizer step on batch ``index``; ``read_loss`` reads the loss on the host, as a script logs it."""
        import contextlib

        import torch

        ids, mask = self.batches[index], self.masks[index]
        start = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext():
            self.loss = self.model(input_ids=ids, attention_mask=mask, labels=ids).loss
        self.loss.backward()
        after_backward = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        after_clip = time.perf_counter()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        after_optimizer = time.perf_counter()
        self.host["forward_backward"].append(after_backward - start)
        self.host["clip"].append(after_clip - after_backward)
        self.host["optimizer_zero_grad"].append(after_optimizer - after_clip)
        if read_loss:
            float(self.loss.detach())


def case_unsloth_trl(args, case: Case) -> dict:
    """Unsloth's own notebook recipe: FastLanguageModel + TRL's SFTTrainer, no labkit (splits labkit's overhead
    into what the Trainer costs and what labkit adds on top of it)."""
    import torch
    import unsloth  # noqa: F401,I001  (before TRL: Unsloth patches it on import)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = _unsloth_model(args, case)
    load_memory = memory()
    torch.cuda.reset_peak_memory_stats()
    rows = random_rows(args.batch_size * (args.warmup + args.steps), args.seq_len, args.vocab)
    config = SFTConfig(output_dir=tempfile.mkdtemp(prefix="labkit-bench-trl-"), per_device_train_batch_size=args.batch_size,
                       gradient_accumulation_steps=1,  # Unsloth's SFTConfig would default to 2
                       max_steps=args.warmup + args.steps, learning_rate=2e-4, lr_scheduler_type="constant",
                       optim="adamw_torch", max_grad_norm=1.0, bf16=True, logging_steps=LABKIT_LOGGING_STEPS,
                       save_strategy="no", report_to="none", max_length=args.seq_len, packing=False, seed=42)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, args=config,
                         train_dataset=Dataset.from_list([{"input_ids": r["input_ids"]} for r in rows]))
    stamps: list[float] = []
    usage: list = []
    trainer.add_callback(_wall_clock_callback(stamps, sync_steps(args, args.step_sync), usage))
    print(TRAINING_MARKER, flush=True)
    trainer.train()
    result = _result(args, stamps, [args.batch_size * args.seq_len] * len(stamps), load_memory, usage)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    result.update(describe="Unsloth + TRL SFTTrainer", final_loss=losses[-1] if losses else float("nan"))
    return result


def _result(args, stamps: list[float], tokens_per_step: list[int], load_memory: dict,
            usage: list | None = None) -> dict:
    if len(stamps) <= args.warmup:
        raise RuntimeError(f"only {len(stamps)} steps ran; need more than --warmup={args.warmup}")
    seconds = stamps[-1] - stamps[args.warmup - 1] if args.warmup else stamps[-1] - stamps[0]
    timed_tokens = sum(tokens_per_step[args.warmup:len(stamps)])
    steps = len(stamps) - args.warmup
    # Host time between step ends (no sync between them): where a run slows down, and from which step.
    step_ms = [round(1000 * (b - a), 2) for a, b in zip(stamps, stamps[1:])]
    window = [stamps[args.warmup - 1] if args.warmup else stamps[0], stamps[-1]]   # perf_counter, and unix time
    return {"timed_steps": steps, "s_per_step": seconds / steps, "tokens_per_step": timed_tokens / steps,
            "tokens_per_s": timed_tokens / seconds, "train_memory": memory(), "load_memory": load_memory,
            "step_ms": step_ms, "window": window, "window_unix": [t + time.time() - time.perf_counter() for t in window],
            **(host_usage(usage[args.warmup - 1 if args.warmup else 0:], steps) if usage else {})}


def host_sample() -> tuple:
    """(``getrusage`` of this process, the CPU the calling thread last ran on or -1, ``scheduler_sample()``): taken
    at each step end."""
    try:
        cpu = int(Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()[36])   # field 39
    except (OSError, ValueError, IndexError):   # not Linux
        cpu = -1
    return resource.getrusage(resource.RUSAGE_SELF), cpu, scheduler_sample()


def scheduler_sample() -> dict:
    """The machine's CPU time stolen by the hypervisor and all its CPU time (jiffies, ``/proc/stat``), and the calling
    thread's time on a CPU and waiting for one (ns, ``/proc/thread-self/schedstat``); {} where not Linux."""
    try:
        jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        on_cpu, waiting = (int(v) for v in Path("/proc/thread-self/schedstat").read_text().split()[:2])
    except (OSError, ValueError):
        return {}
    return {"steal": jiffies[7], "jiffies": sum(jiffies), "on_cpu_ns": on_cpu, "wait_ns": waiting}


def host_usage(samples: list[tuple], steps: int) -> dict:
    """The training process's resource usage per timed step, from the ``host_sample`` at the window's start to the
    last: CPU seconds (all threads), minor page faults, voluntary / involuntary context switches, and on which
    CPUs the training thread ended its steps (how often it had moved); with scheduler samples also the machine's
    share of CPU time stolen by the hypervisor and the training thread's time on a CPU and waiting for one. A host
    that leaves the GPU waiting may be descheduled (involuntary switches, run-queue wait), slowed by its virtual
    machine's host (steal), faulting in pages (e.g. copy-on-write after the dataloader workers were forked from it)
    or moved to another core, away from its caches and maybe from the GPU's NUMA node."""
    (start, *_), (end, *_) = samples[0], samples[-1]
    cpus = [sample[1] for sample in samples]
    out = {"host_cpu_s_per_step": (end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime) / steps,
           "minor_faults_per_step": (end.ru_minflt - start.ru_minflt) / steps,
           "voluntary_switches_per_step": (end.ru_nvcsw - start.ru_nvcsw) / steps,
           "involuntary_switches_per_step": (end.ru_nivcsw - start.ru_nivcsw) / steps,
           "cpus": sorted(set(cpus)), "cpu_moves": sum(a != b for a, b in zip(cpus, cpus[1:]))}
    first, last = (sample[2] if len(sample) > 2 else {} for sample in (samples[0], samples[-1]))
    if first and last:
        jiffies = last["jiffies"] - first["jiffies"]
        out.update(steal_pct=100 * (last["steal"] - first["steal"]) / jiffies if jiffies else 0.0,
                   thread_on_cpu_ms_per_step=(last["on_cpu_ns"] - first["on_cpu_ns"]) / 1e6 / steps,
                   thread_wait_ms_per_step=(last["wait_ns"] - first["wait_ns"]) / 1e6 / steps)
    return out


# ------------------------------------------------------------------ driver

def _child(args, what: str, timeout: float, log) -> dict:
    command = [sys.executable, "-m", "benchmarks.gpu_train", "--child", what, *_shared_flags(args)]
    log.write(f"\n===== {what}: {' '.join(command)}\n")
    log.flush()
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        log.write(_text(err.stdout) + _text(err.stderr))
        return {"error": f"timed out after {timeout:.0f} s"}
    log.write(done.stdout + done.stderr)
    log.flush()
    if done.returncode != 0:
        stage = "training" if TRAINING_MARKER in done.stdout else "loading"
        return {"error": f"failed while {stage}: " + (done.stderr.strip().splitlines() or ["(no stderr)"])[-1][:400],
                "stage": stage}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _shared_flags(args) -> list[str]:
    flags = ["--out", str(args.out), "--model-dir", args.model_dir, "--tokenizer", str(args.tokenizer), "--device", args.device,
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
             "--seq-len", str(args.seq_len), "--rank", str(args.rank)]
    return flags + ["--shape", args.shape] + (["--step-sync"] if args.step_sync else [])


def mfu(tokens_per_s: float | None, flops_per_token: float, peak_tflops: float | None) -> float | None:
    if not tokens_per_s or not peak_tflops:
        return None
    return tokens_per_s * flops_per_token / (peak_tflops * 1e12)


def table(results: dict[str, dict], model: dict, peak_tflops: float | None) -> str:
    lines = ["| path | tokens/s | s/step | MFU | peak alloc GiB (train) | peak reserved GiB (train) "
             "| peak alloc GiB (load) | labkit-logged tokens/s | final loss | GPU: SM MHz, W, busy % | "
             "M SM cycles/step | notes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for name, r in results.items():
        label = case_for(name).label
        if "error" in r or "skipped" in r:
            lines.append(f"| {label} | - | - | - | - | - | - | - | - | - | - | {r.get('error') or r.get('skipped')} |")
            continue
        train, load = r["train_memory"], r["load_memory"]
        share = mfu(r["tokens_per_s"], model["flops_per_token"], peak_tflops)
        lines.append(
            f"| {label} | {r['tokens_per_s']:,.0f} | {r['s_per_step']:.3f} | "
            f"{'-' if share is None else f'{100 * share:.1f}%'} | {_gib(train, 'max_allocated_gib')} | "
            f"{_gib(train, 'max_reserved_gib')} | {_gib(load, 'max_allocated_gib')} | "
            f"{_num(r.get('labkit_logged_tokens_per_s'))} | {r['final_loss']:.3f} | {gpu_cell(r)} | "
            f"{_num(r.get('mcycles_per_step'))} | {r.get('describe', '')} |")
    return "\n".join(lines + [""] + _ratios(results))


def gpu_cell(result: dict) -> str:
    """The GPU's mean SM clock, power and busy share over a timed window (``gpu_clocks``), or '-'."""
    g = result.get("gpu")
    return f"{g['sm_mhz']:,.0f}, {g['power_w']:.0f}, {g['util_pct']:.0f}" if g else "-"


def _gib(memory_stats: dict, key: str) -> str:
    return f"{memory_stats[key]:.2f}" if key in memory_stats else "-"


def _num(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratios(results: dict[str, dict]) -> list[str]:
    """The targets: labkit on Unsloth >= 1.8x (bf16) / 4x (QLoRA) the tokens/s of plain transformers + PEFT, at
    <= 35% of its peak memory; labkit's overhead vs the bare Unsloth loop <= 5%. Also, for information, the same
    ratios against labkit's own transformers path, and the overhead against Unsloth's notebook recipe."""
    def result(name):
        if "tokens_per_s" in results.get(name, {}):
            return results[name]
        return results.get(name + OWN_LOSS) if "tokens_per_s" in results.get(name + OWN_LOSS, {}) else None

    lines = []
    for fast, slow, target in (("labkit-unsloth-bf16", "plain-hf-bf16", 1.8), ("labkit-unsloth-qlora", "plain-hf-qlora", 4.0),
                               ("labkit-unsloth-bf16", "labkit-hf-bf16", None),
                               ("labkit-unsloth-qlora", "labkit-hf-qlora", None)):
        a, b = result(fast), result(slow)
        if a and b:
            speed = a["tokens_per_s"] / b["tokens_per_s"]
            mem_a, mem_b = a["train_memory"].get("max_allocated_gib"), b["train_memory"].get("max_allocated_gib")
            mem = f"{100 * mem_a / mem_b:.0f}%" if mem_a and mem_b else "-"
            goal = f" (target >= {target}x; memory <= 35%)" if target else " (for information)"
            lines.append(f"- {fast} vs {slow}: {speed:.2f}x tokens/s, peak allocated {mem} of it{goal}")
    pairs = [("", "bare-unsloth-bf16", " (target <= 5%)"), ("", "unsloth-trl-bf16", " (for information)")]
    pairs += [(f"#{n}", f"bare-unsloth-bf16#{n}", f" (run {n})") for n in range(2, 10)]
    for repeat, reference, goal in pairs:
        a, b = result("labkit-unsloth-bf16" + repeat), result(reference)
        if a and b:
            overhead = 1 - a["tokens_per_s"] / b["tokens_per_s"]
            cycles = ""
            if a.get("mcycles_per_step") and b.get("mcycles_per_step"):
                cycles = f"; per SM cycle {100 * (1 - b['mcycles_per_step'] / a['mcycles_per_step']):.1f}% fewer"
            lines.append(f"- labkit overhead vs {reference}: {100 * overhead:.1f}% fewer tokens/s{cycles}{goal}")
    return lines


def _peak_tflops(args, gpu: str | None) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    return next((value for key, value in PEAK_TFLOPS.items() if gpu and key in gpu), None)


def drive(args) -> dict:
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    clocks = args.out / "gpu_clocks.csv"
    with open(args.out / "gpu_train_cases.log", "a", encoding="utf-8") as log, gpu_clocks.sampled(clocks) as sampling:
        model = _child(args, "build", args.budget_s, log)
        if "error" in model:
            raise RuntimeError(f"building the random model failed: {model['error']} (see {log.name})")
        peak = _peak_tflops(args, model["gpu"])
        results: dict[str, dict] = {}
        queue = args.cases.split(",")
        while queue:
            name = queue.pop(0)
            case, left = case_for(name), args.budget_s - (time.time() - started)
            if case.cuda_only and args.device != "cuda":
                results[name] = {"skipped": "needs CUDA"}
            elif left < 60:
                results[name] = {"skipped": f"not run: {left:.0f} s of the time budget left"}
            else:
                results[name] = _child(args, name, min(left, args.case_timeout_s), log)
                failed_training = results[name].get("stage") == "training"
                if failed_training and not (case.bare or case.variants or "#" in name) and name + OWN_LOSS not in queue:
                    queue.insert(0, name + OWN_LOSS)   # does it run without TRL's fused LM head?
            print(f"{name}: {json.dumps(results[name])}", flush=True)
            _write(args, model, results, peak)
    samples = gpu_clocks.read_samples(sampling)   # read once the sampler has stopped (and flushed)
    if samples:
        for result in results.values():
            gpu_clocks.add_clocks(result, samples)
        _write(args, model, results, peak)
    return {"model": model, "results": results}


def _write(args, model: dict, results: dict, peak: float | None) -> None:
    from labkit.env import versions

    header = (f"GPU: {model['gpu'] or 'none (CPU)'}; peak bf16 {peak or '-'} TFLOP/s; model "
              f"{model['params_total'] / 1e9:.3f} B params ({model['params_non_embedding'] / 1e9:.3f} B non-embedding"
              f" + {model['params_lm_head'] / 1e9:.3f} B LM head, {model['flops_per_token'] / 1e9:.2f} GFLOP/token); "
              f"batch {args.batch_size} x {args.seq_len}, LoRA r={args.rank} on 7 projections, gradient "
              f"checkpointing, AdamW; {args.steps} timed steps after {args.warmup} warm-up; the clock waits for the GPU "
              f"{'after every step' if args.step_sync else 'at the two ends of the timed window'}")
    text = header + "\n\n" + table(results, model, peak) + "\n"
    (args.out / "gpu_train.md").write_text(text, encoding="utf-8")
    payload = {"model": model, "peak_tflops": peak, "args": {k: str(v) for k, v in vars(args).items()},
               "versions": versions(), "results": results}
    (args.out / "gpu_train.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def run_child(args) -> None:
    if args.child == "build":
        print(json.dumps(build_model(args)))
        return
    case = case_for(args.child)
    runner = (case_bare_unsloth if case.bare else case_plain_hf if case.plain else case_unsloth_trl if case.trl_only
              else case_labkit)
    print(json.dumps(runner(args, case), default=str))


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the table (md + json) and the logs")
    parser.add_argument("--tokenizer", type=Path, required=True, help="a folder with a tokenizer (see the docstring)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--model-dir", type=Path, help="where the random model is saved (default: <out>/model)")
    parser.add_argument("--shape", default="1b", choices=sorted(SHAPES), help="Llama-3.2-1B / 3B shape, or tiny")
    parser.add_argument("--tiny", action="store_true", help="same as --shape tiny (a 2-layer toy, CPU smoke run)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: by its name)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--budget-s", type=float, default=520, help="stop starting cases after this many seconds")
    parser.add_argument("--case-timeout-s", type=float, default=200)
    parser.add_argument("--step-sync", action="store_true",
                        help="wait for the GPU after every step and read the loss every step (sessions 2-3 timing)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in args.cases.split(","):
        try:
            case_for(name)
        except (KeyError, ValueError) as err:
            parser.error(f"case {name!r}: {err}; cases are {', '.join(CASES)}, variants :{', :'.join(VARIANTS)}")
    args.model_dir = str(args.model_dir or args.out / "model")
    args.shape = "tiny" if args.tiny else args.shape
    args.vocab = SHAPES[args.shape]["vocab_size"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    drive(args)
    print((args.out / "gpu_train.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
