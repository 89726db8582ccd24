"""Supervised fine-tuning with TRL's ``SFTTrainer`` on a run's prepared data, with resume and guards.

``run_training(cfg, run)`` reads ``run/data/{train,validation}.jsonl`` (written by notebook 01 /
``labkit prepare``), tokenizes each conversation with labkit's assistant mask, trains a LoRA adapter and writes:

- ``run/checkpoints/checkpoint-N/`` every ``train.save_steps`` (the last ``save_total_limit`` kept);
- ``run/logs/train_log.jsonl`` and ``run/tb/`` (TensorBoard): loss, lr, grad norm, tokens/s, step time, memory;
- ``run/adapter/`` (adapter + tokenizer) and ``run/train_summary.json``.

How the mask reaches the loss: TRL 1.15 takes a pre-tokenized dataset (it sees ``input_ids`` and skips its own
tokenization) and turns an ``assistant_masks`` column into ``labels`` (-100 where the mask is 0) during
dataset preparation, before truncation and packing. So labkit passes ``input_ids`` + ``assistant_masks`` as-is
and trains on exactly labkit's mask, with no ``assistant_only_loss`` template tricks.
"""

from __future__ import annotations

import time
from pathlib import Path

from labkit.train.callbacks import (LogWriter, StepTimer, TokenMeter, TrainingDiverged, peak_gpu_mb,
                              peak_rss_mb, read_log)
from labkit.config import Config, ConfigError
from labkit.distributed import globalize_token_rates, is_main_process, setup, wait_for_everyone, world_size
from labkit.train.loading import LoadedModel, load_for_training
from labkit.train.trackers import check_trackers, trainer_report_to, uses_own_writer
from labkit.runs import Run, atomic_write_json, read_json
from labkit.train.rows import evaluate_loss, load_split, tokenize_rows  # noqa: F401  (public here too)
from labkit.train.resume import (ADAPTER, CHECKPOINTS, LOGS, TB, TRAIN_LOG, check_ready, checkpoint_step,  # noqa: F401
                                 latest_checkpoint, quarantine_checkpoints, resume_from, start_fresh)


class TrainingOOM(RuntimeError):
    """The accelerator ran out of memory; the message lists settings that reduce memory."""


# ------------------------------------------------------------------ the trainer

def fused_head_available() -> bool:
    """TRL 1.15 computes the SFT loss with a Triton kernel (fused LM head); it exists only with Triton + CUDA."""
    import torch
    from trl.trainer import utils as trl_utils

    return torch.cuda.is_available() and getattr(trl_utils, "_ChunkedLogProbFunction", None) is not None


def _trainer_class():
    from transformers import Trainer
    from trl import SFTTrainer

    from labkit.train.head import trained_positions_loss
    from labkit.train.lean_steps import LeanStepsMixin

    class LabkitSFTTrainer(LeanStepsMixin, SFTTrainer):
        """SFTTrainer + token counting, the loss guard, and speed/memory fields in every training log; the
        Trainer's per-step walks over the whole model done once instead (labkit.train.lean_steps)."""

        meter: TokenMeter
        use_fused_head: bool = True
        head_at_trained_positions: bool = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.use_fused_head:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if self.head_at_trained_positions and not return_outputs:
                # Without Triton: the LM head only at the trained positions, in plain torch (labkit.train.head).
                loss = trained_positions_loss(model, inputs, num_items_in_batch,
                                              head_owner=self.accelerator.unwrap_model(model))
                if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                    loss = loss * self.accelerator.num_processes  # as Trainer.compute_loss: DDP averages gradients
                return loss
            # Without Triton (CPU, MPS) TRL's fused-head loss cannot run: use the model's own causal-LM loss, which
            # is the same quantity (sum of -log p over label tokens / number of label tokens in the accumulated
            # batch); TRL's extra metrics (token accuracy, entropy) are then not logged.
            # use_cache=False matters beyond speed: transformers only builds the per-example (block-diagonal)
            # attention of packed rows when no cache is passed.
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs,
                                        num_items_in_batch)

        def training_step(self, model, inputs, num_items_in_batch=None):
            self.meter.add_batch(inputs)
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.meter.add_loss(loss, self.state.global_step)
            return loss

        def log(self, logs, start_time=None):
            if "loss" in logs:
                logs.update(globalize_token_rates(self.meter.drain()))  # summed over processes
            super().log(logs, start_time)

    return LabkitSFTTrainer


GPU_LOADER_WORKERS = 2
# Off only to measure what it saves (benchmarks.train_speed's "full head" case).
HEAD_AT_TRAINED_POSITIONS = True


def sft_config(cfg: Config, run: Run, loaded: LoadedModel):
    """TRL's ``SFTConfig`` from labkit's train section (every default TRL would pick is set explicitly)."""
    from trl import SFTConfig

    t = cfg.train
    if t.early_stopping_patience and not t.eval_steps:
        raise ConfigError("train.early_stopping_patience needs train.eval_steps > 0 (it stops on validation loss)")
    save_steps = t.save_steps
    if t.early_stopping_patience and save_steps % t.eval_steps:
        raise ConfigError(f"train.early_stopping_patience keeps the best checkpoint, so train.save_steps "
                          f"({save_steps}) must be a multiple of train.eval_steps ({t.eval_steps})")
    micro_batch, accumulate = packed_micro_batches(cfg, loaded)
    config = SFTConfig(
        output_dir=str(run.path(CHECKPOINTS)),
        num_train_epochs=t.epochs, max_steps=t.max_steps or -1,
        per_device_train_batch_size=micro_batch, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=accumulate,
        learning_rate=t.lr, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=t.optim,
        # Unsloth installs its own (offloaded) checkpointing in get_peft_model.
        gradient_checkpointing=t.gradient_checkpointing and loaded.backend != "unsloth",
        gradient_checkpointing_kwargs={"use_reentrant": False},
        eval_strategy="steps" if t.eval_steps else "no", eval_steps=t.eval_steps or None,
        # The evaluation every train.eval_steps needs only the loss. Asked for the logits too, the Trainer keeps every
        # validation token's logits until the evaluation ends (validation tokens x vocabulary in fp32: 1.2 GiB for the
        # cpu-demo run's 41 rows, about 40 GB for 200 FineTome rows on Llama 3's vocabulary) and, on the CPU,
        # computes them with the full LM head; loss only, TRL's prediction_step takes compute_loss's own path.
        prediction_loss_only=True,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=bool(t.early_stopping_patience), metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=t.logging_steps, logging_first_step=True,
        report_to=trainer_report_to(t.report_to), run_name=run.name,
        # The Trainer's NaN filter reads every micro-batch's loss on the host (a GPU sync between backward and the
        # optimizer step) to log a non-finite loss as the running mean: it would hide the NaN. labkit's guard
        # (callbacks.StepTimer) stops the run at a non-finite loss instead. Unsloth's SFTConfig turns it off too.
        logging_nan_inf_filter=False,
        # Multi-GPU (DDP): every LoRA weight takes part in every step, so DDP need not search the graph for
        # unused parameters (the Trainer's default for a PEFT model), which costs time every step.
        ddp_find_unused_parameters=False,
        seed=t.seed, data_seed=t.seed,
        bf16=loaded.dtype == "bfloat16", fp16=loaded.dtype == "float16",
        use_cpu=loaded.device == "cpu", dataloader_pin_memory=loaded.device == "cuda",
        # On a GPU two worker processes collate the next batches while it trains (the training process then only
        # launches kernels; reports/gpu_benchmark.md). On the CPU the cores are busy training: no workers.
        dataloader_num_workers=GPU_LOADER_WORKERS if loaded.device == "cuda" else 0,
        dataloader_persistent_workers=loaded.device == "cuda",
        max_length=cfg.data.max_seq_length, packing=cfg.data.packing, packing_strategy="bfd",
        eval_packing=False, assistant_only_loss=False, completion_only_loss=False,
    )
    one_gpu_without_launcher(config)
    return config


def one_gpu_without_launcher(args) -> None:
    """One process that sees several GPUs: the Trainer would wrap the model in ``nn.DataParallel``, which TRL
    refuses (found on a 2-GPU machine) and which is slower than DDP anyway. Train on the current GPU instead and
    say how to use them all (``accelerate launch``; README, multi-GPU)."""
    if world_size() > 1 or args.n_gpu <= 1:
        return
    print(f"labkit: {args.n_gpu} GPUs are visible to this one process; training on {args.device} only. To train "
          f"on all of them: accelerate launch --config_file labkit/accelerate/ddp.yaml --num_processes {args.n_gpu} "
          "-m labkit.cli train --preset ... --run ...")
    args._n_gpu = 1  # n_gpu is computed once (cached device setup); the Trainer reads it from here


FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")


def packed_micro_batches(cfg: Config, loaded: LoadedModel) -> tuple[int, int]:
    """(micro-batch, accumulation steps). Packed + padding-free, TRL flattens a micro-batch of B packed rows into
    ONE row of B x max_seq_length tokens. FlashAttention handles that row per example, but SDPA / eager build a
    dense (B*L)^2 attention mask: 8 rows of 384 cost 8x the attention compute and memory of the unpacked run
    (measured on 2 CPU cores: packed ran at 0.85x the trained tokens/s of padded batches, 9.2 GB RSS). So without
    FlashAttention each micro-batch is one packed row, accumulated to the same effective batch."""
    t = cfg.train
    attention = getattr(loaded.model.config, "_attn_implementation", "") or ""
    if cfg.data.packing and not attention.startswith(FLASH_ATTENTION):
        return 1, t.batch_size * t.grad_accum
    return t.batch_size, t.grad_accum


# Under Unsloth, padded batches run each decoder block as one compiled region; padding-free (varlen) batches,
# which Unsloth picks by default on H100 / H200, run the blocks eagerly. When padding wastes (almost) nothing
# the padded batches are the same work, faster (reports/gpu_benchmark.md, "labkit's overhead on Unsloth").
PADDED_MAX_WASTE = 0.05


def padding_is_free(cfg: Config, loaded: LoadedModel, rows: list[dict], micro_batch: int) -> bool:
    """True when Unsloth should pad rather than go padding-free: unpacked rows whose padded micro-batches waste
    at most ``PADDED_MAX_WASTE`` of their tokens in the worst case (shortest row / longest row), or micro-batches
    of one row. Other backends keep TRL's default (padded unless packing)."""
    if loaded.backend != "unsloth" or cfg.data.packing or not rows:
        return False
    lengths = [len(row["input_ids"]) for row in rows]
    return micro_batch == 1 or min(lengths) >= (1 - PADDED_MAX_WASTE) * max(lengths)


def build_trainer(cfg: Config, run: Run, loaded: LoadedModel, train_rows: list[dict], val_rows: list[dict],
                  resume_step: int = 0):
    from datasets import Dataset
    from transformers import EarlyStoppingCallback

    from labkit.train.checkpoint_io import MarkComplete

    meter = TokenMeter(defer=loaded.device == "cuda")  # no host sync per micro-batch on a GPU
    tb_dir = run.path(TB) if uses_own_writer(cfg.train.report_to) else None
    callbacks = [StepTimer(meter), LogWriter(run.path(LOGS, TRAIN_LOG), tb_dir, resume_step), MarkComplete()]
    if cfg.train.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping_patience))
    args = sft_config(cfg, run, loaded)
    if padding_is_free(cfg, loaded, train_rows, args.per_device_train_batch_size):
        args.padding_free = False  # explicit: Unsloth then pads instead of choosing padding-free itself
    trainer = _trainer_class()(
        model=loaded.model, args=args, processing_class=loaded.tokenizer,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows and cfg.train.eval_steps else None,
        callbacks=callbacks)
    trainer.meter = meter
    # TRL's fused LM head never builds the full logits (4 GiB at 4 x 2048 x 128k in fp32) and logs token accuracy.
    # Unsloth's own loss is fused too and was 5% faster under Unsloth (H200, reports/gpu_benchmark.md), so the
    # Unsloth backend keeps it (no token-accuracy metric then).
    trainer.use_fused_head = fused_head_available() and loaded.device == "cuda" and loaded.backend != "unsloth"
    # Elsewhere (CPU, MPS, CUDA without Triton) the same idea in plain torch: 1.3x trained tokens/s on the cpu-demo
    # preset (reports/speed.md). Evaluation inside the trainer asks for logits only when it needs them.
    trainer.head_at_trained_positions = HEAD_AT_TRAINED_POSITIONS and loaded.backend != "unsloth"
    return trainer


# ------------------------------------------------------------------ the run

def run_training(cfg: Config, run: Run, *, resume: bool | str = False, command: str | None = None) -> dict:
    """Train a LoRA adapter on ``run``'s prepared data; returns (and records) the training summary.

    ``resume=True`` continues from the latest complete checkpoint (or starts fresh when there is none) and returns
    a finished run's summary without training again; a path resumes from that checkpoint; ``False`` starts over
    (labkit.train.resume). The HF Trainer restores optimizer, scheduler and RNG states and skips the batches
    already seen: a resumed run repeats no step and skips none. One trainer per run folder; SIGTERM / SIGINT save
    a checkpoint and stop (labkit.train.guard); ``command`` (the CLI's) is named as the way to continue.
    """
    from labkit.env import pick_device
    from labkit.train.guard import run_lock

    started = time.time()
    check_trackers(cfg.train.report_to)  # a missing tracker package fails now, not after the model has loaded
    setup(pick_device(cfg.model.device))  # under `accelerate launch`: the process group, this process's GPU
    with run_lock(run.dir):  # before anything is removed or written: another process may be training this run
        return _run_locked(cfg, run, resume, command, started)


def _run_locked(cfg: Config, run: Run, resume: bool | str, command: str | None, started: float) -> dict:
    from labkit.env import seed_everything

    checkpoint = resume_from(run, resume)
    finished = check_ready(run, cfg, checkpoint, resuming=resume is True)  # settings checked before any load
    if finished is not None:
        return finished
    print(f"labkit: resuming from {checkpoint}" if checkpoint else f"labkit: training run {run.name!r} from step 0")
    train_split, val_split = load_split(run, "train"), load_split(run, "validation")  # missing data: before a load
    if checkpoint is None:
        if is_main_process():
            start_fresh(run, announce=resume is False)
            atomic_write_json(run.path(LOGS, "train_config.json"), cfg.to_dict())
    wait_for_everyone()
    seed_everything(cfg.train.seed)
    loaded = load_for_training(cfg)
    tokenizer, limit = loaded.tokenizer, cfg.data.max_seq_length
    train_rows, dropped = tokenize_rows(train_split, tokenizer, limit)
    if dropped:
        print(f"labkit: {dropped} training row(s) have no assistant token within data.max_seq_length={limit}; "
              "skipped")
    val_rows, _ = tokenize_rows(val_split, tokenizer, limit)
    base_loss = _base_eval_loss(run, loaded, val_split, limit, cfg.train.batch_size, fresh=checkpoint is None)
    trainer = build_trainer(cfg, run, loaded, train_rows, val_rows, checkpoint_step(checkpoint))
    _train_guarded(trainer, run, checkpoint, cfg, command)
    wait_for_everyone()  # the main process has written the whole log before anyone summarises it
    final_loss = evaluate_loss(loaded.model, tokenizer, val_split, max_length=limit,
                               batch_size=cfg.train.batch_size) if val_split else None
    adapter = save_adapter(loaded, run) if is_main_process() else run.path(ADAPTER)
    summary = _summary(cfg, run, loaded, trainer, started, base_loss, final_loss, adapter, checkpoint,
                       len(train_rows), len(val_split), dropped)
    if is_main_process():
        run.record("train_summary", summary)
    wait_for_everyone()
    return summary


def _base_eval_loss(run: Run, loaded: LoadedModel, val_split: list[dict], limit: int, batch_size: int,
                    fresh: bool) -> float | None:
    """The base model's validation loss (adapter disabled), measured once per run and kept for resumes."""
    path = run.path(LOGS, "base_eval.json")
    if not fresh and path.exists():
        return read_json(path)["base_eval_loss"]
    if not val_split:
        return None
    with loaded.model.disable_adapter():
        loss = evaluate_loss(loaded.model, loaded.tokenizer, val_split, max_length=limit, batch_size=batch_size)
    if is_main_process():
        atomic_write_json(path, {"base_eval_loss": loss, "rows": len(val_split)})
        print(f"labkit: base model validation loss {loss:.4f} ({len(val_split)} rows)")
    return loss


def _train_guarded(trainer, run: Run, checkpoint: Path | None, cfg: Config, command: str | None = None) -> None:
    import torch

    from labkit.train.checkpoint_io import CheckpointWriteError, is_write_failure, write_failure_message
    from labkit.train.guard import StopOnSignal

    stopper = StopOnSignal(run.dir)
    trainer.add_callback(stopper)
    try:
        with stopper.installed():
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except TrainingDiverged as err:
        good = quarantine_checkpoints(run, err.step) if is_main_process() else latest_checkpoint(run)
        keep = f"the last good checkpoint is {good}" if good else "no good checkpoint was saved before it"
        raise TrainingDiverged(err.step, f"{err}. Training stopped; {keep} (checkpoints from step {err.step} on "
                               f"were renamed nonfinite-*). Lower train.lr (now {cfg.train.lr:g}), raise "
                               f"train.warmup_ratio or keep train.max_grad_norm > 0, then run again with "
                               f"resume=True") from None
    except torch.OutOfMemoryError:
        raise TrainingOOM(oom_advice(cfg)) from None
    except Exception as err:
        folder, step = run.path(CHECKPOINTS), trainer.state.global_step
        if not is_write_failure(err, folder, step):
            raise
        raise CheckpointWriteError(write_failure_message(err, folder, step)) from err
    finally:
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, LogWriter):
                callback.close()
    if stopper.stopped_at is not None:
        raise stopper.error(run.path(CHECKPOINTS), run.path(LOGS, TRAIN_LOG), command)


def oom_advice(cfg: Config) -> str:
    t, d, m = cfg.train, cfg.data, cfg.model
    options = [f"train.batch_size={max(1, t.batch_size // 2)} with train.grad_accum={t.grad_accum * 2} "
               f"(same effective batch)",
               f"data.max_seq_length={max(64, d.max_seq_length // 2)} (now {d.max_seq_length})"]
    if not m.load_in_4bit:
        options.append("model.load_in_4bit=true (QLoRA: 4-bit base weights)")
    if not t.gradient_checkpointing:
        options.append("train.gradient_checkpointing=true (recompute activations)")
    return ("the GPU ran out of memory while training. Free memory (restart the kernel if another model is "
            "loaded) and try one or more of: " + "; ".join(options) + ". Then run again with resume=True.")


def save_adapter(loaded: LoadedModel, run: Run) -> Path:
    """Adapter + tokenizer, written to a temporary folder and swapped in (a failed write keeps the old one)."""
    from labkit.train.checkpoint_io import save_dir_atomically

    def write(folder: Path) -> None:
        loaded.model.save_pretrained(folder)
        loaded.tokenizer.save_pretrained(folder)

    return save_dir_atomically(run.path(ADAPTER), write, checkpoint=latest_checkpoint(run))


def _summary(cfg, run, loaded, trainer, started, base_loss, final_loss, adapter, checkpoint, n_train, n_val,
             dropped) -> dict:
    records = read_log(run.path(LOGS, TRAIN_LOG)) if run.path(LOGS, TRAIN_LOG).exists() else []
    steps = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    seconds = sum(r.get("step_seconds", 0.0) for r in steps)
    trained = sum(r.get("trained_tokens", 0) for r in steps)
    tokens = sum(r.get("tokens", 0) for r in steps)
    state = trainer.state
    return {
        "wall_time_s": time.time() - started, "train_seconds": seconds,
        "steps": state.global_step, "epochs": state.epoch, "steps_per_s": state.global_step / seconds if seconds else None,
        "train_rows": n_train, "validation_rows": n_val, "rows_without_trained_tokens": dropped,
        "trained_tokens": trained, "tokens": tokens,
        "trained_tokens_per_s": trained / seconds if seconds else None,
        "tokens_per_s": tokens / seconds if seconds else None,
        "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu_mb(),
        "final_train_loss": steps[-1]["loss"] if steps else None,
        "final_eval_loss": final_loss, "base_eval_loss": base_loss,
        "last_logged_eval_loss": evals[-1]["eval_loss"] if evals else None,
        "empty_batches": trainer.meter.empty_batches,
        "backend": loaded.backend, "dtype": loaded.dtype, "device": loaded.device,
        # Under `accelerate launch`: token counts and tokens/s are the whole job's (all processes);
        # peak memory is the main process's.
        "world_size": world_size(),
        "load_in_4bit": loaded.load_in_4bit, "trainable_params": loaded.params.to_dict(),
        "packing": cfg.data.packing,
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "resumed_from": str(checkpoint) if checkpoint else None,
        "stopped_early": bool(cfg.train.early_stopping_patience) and state.global_step < state.max_steps,
        "best_checkpoint": state.best_model_checkpoint,
        "adapter_path": str(adapter), "run": run.name,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m labkit.train.trainer --preset P --run R [--resume] [key=value ...]`` (used by tests and scripts)."""
    import argparse

    from labkit.config import load_config

    parser = argparse.ArgumentParser(prog="python -m labkit.train.trainer")
    parser.add_argument("--preset", default="cpu-demo")
    parser.add_argument("--run", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = load_config(args.preset, args.overrides)
    summary = run_training(cfg, Run.open(args.run, cfg), resume=args.resume)
    print({k: summary[k] for k in ("steps", "final_train_loss", "final_eval_loss", "base_eval_loss")})


if __name__ == "__main__":
    main()
