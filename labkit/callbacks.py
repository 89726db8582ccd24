"""Training-time bookkeeping: token and speed meters, the non-finite guard, and the log writers.

The Trainer's own callbacks do the progress bar (tqdm with ETA) and checkpoint rotation; these add what it
lacks: trained-token and non-padding-token throughput, step time, memory, a JSONL log and TensorBoard scalars
with stable names, and a guard that stops the run at the first non-finite loss or weight.
"""

from __future__ import annotations

import math
import resource
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from labkit.runs import append_jsonl, read_log, write_jsonl


class TrainingDiverged(RuntimeError):
    """The loss or the adapter weights became NaN/inf; training stopped."""

    def __init__(self, step: int, what: str):
        self.step = step
        super().__init__(f"{what} at step {step}")


class EmptyBatchWarning(UserWarning):
    """A micro-batch had no trained (assistant) tokens: it costs time and teaches nothing."""


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_gpu_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


@dataclass
class TokenMeter:
    """Counts tokens per micro-batch and time per optimizer step; drained into each logged record."""

    trained: int = 0              # label tokens (assistant replies) in the current logging window
    tokens: int = 0               # non-padding tokens in the window
    seconds: float = 0.0          # time spent inside optimizer steps in the window
    cpu_seconds: float = 0.0      # CPU time of this process (all threads) in those steps: on a shared machine
    steps: int = 0                # it shows the work done, while wall time also counts waiting for the CPU
    empty_batches: int = 0        # over the whole session
    _step_start: float | None = field(default=None, repr=False)
    _cpu_start: float = field(default=0.0, repr=False)

    def add_batch(self, inputs: dict) -> int:
        labels = inputs["labels"]
        # Labels are shifted inside the model: the first position of each sequence predicts nothing.
        trained = int((labels[..., 1:] != -100).sum())
        if "attention_mask" in inputs:
            tokens = int(inputs["attention_mask"].sum())
        else:  # padding-free / packed batches carry position_ids and no attention mask
            tokens = int(labels.numel()) if "position_ids" not in inputs else int(inputs["position_ids"].numel())
        self.trained += trained
        self.tokens += tokens
        if trained == 0:
            self.empty_batches += 1
            warnings.warn(f"a training batch has no trained (assistant) tokens ({self.empty_batches} so far): "
                          "check data.max_seq_length against the length of your prompts", EmptyBatchWarning,
                          stacklevel=2)
        return trained

    def start_step(self) -> None:
        self._step_start = time.perf_counter()
        self._cpu_start = time.process_time()

    def end_step(self) -> None:
        if self._step_start is not None:
            self.seconds += time.perf_counter() - self._step_start
            self.cpu_seconds += time.process_time() - self._cpu_start
            self.steps += 1
            self._step_start = None

    def drain(self) -> dict:
        """Metrics of the window since the last log, then reset the window."""
        seconds = max(self.seconds, 1e-9)
        out = {
            "trained_tokens": self.trained, "tokens": self.tokens, "step_seconds": self.seconds,
            "step_cpu_seconds": self.cpu_seconds,
            "step_time": self.seconds / max(self.steps, 1),
            "trained_tokens_per_s": self.trained / seconds, "tokens_per_s": self.tokens / seconds,
            "rss_mb": current_rss_mb(), "peak_rss_mb": peak_rss_mb(), "empty_batches": self.empty_batches,
        }
        gpu = peak_gpu_mb()
        if gpu is not None:
            out["peak_gpu_mb"] = gpu
        self.trained = self.tokens = self.steps = 0
        self.seconds = self.cpu_seconds = 0.0
        return out


class StepTimer(TrainerCallback):
    """Times each optimizer step and checks the adapter weights after it (before any checkpoint is written)."""

    def __init__(self, meter: TokenMeter):
        self.meter = meter

    def on_step_begin(self, args, state, control, **kwargs):
        self.meter.start_step()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.meter.end_step()
        if model is not None and not trainable_weights_finite(model):
            raise TrainingDiverged(state.global_step, "the adapter weights became NaN/inf")


def trainable_weights_finite(model) -> bool:
    """One device sync for all adapter weights (a sync per tensor cost ~12% of a GPU step: 224 tensors)."""
    import torch

    flags = [torch.isfinite(p).all() for p in model.parameters() if p.requires_grad]
    return bool(torch.stack(flags).all()) if flags else True


def check_loss(loss, step: int) -> None:
    value = float(loss)
    if not math.isfinite(value):
        raise TrainingDiverged(step, f"the training loss became {value}")


# ------------------------------------------------------------------ log writers

SCALAR_NAMES = {  # Trainer key -> TensorBoard tag
    "loss": "train/loss", "learning_rate": "train/lr", "grad_norm": "train/grad_norm",
    "tokens_per_s": "speed/tokens_per_s", "trained_tokens_per_s": "speed/trained_tokens_per_s",
    "step_time": "speed/step_time_s", "rss_mb": "memory/rss_mb", "peak_rss_mb": "memory/peak_rss_mb",
    "peak_gpu_mb": "memory/peak_gpu_mb", "eval_loss": "eval/loss", "mean_token_accuracy": "train/token_accuracy",
    "eval_mean_token_accuracy": "eval/token_accuracy",
}


class LogWriter(TrainerCallback):
    """Writes every Trainer log record to ``train_log.jsonl`` and its scalars to TensorBoard."""

    def __init__(self, log_path: Path, tb_dir: Path, resume_step: int = 0):
        self.log_path = Path(log_path)
        self.tb_dir = Path(tb_dir)
        self.resume_step = resume_step
        self.writer = None

    def on_train_begin(self, args, state, control, **kwargs):
        from torch.utils.tensorboard import SummaryWriter

        truncate_log(self.log_path, self.resume_step)
        # purge_step drops events a killed run wrote after the checkpoint we resume from.
        self.writer = SummaryWriter(str(self.tb_dir), purge_step=self.resume_step + 1 if self.resume_step else None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        kind = "eval" if "eval_loss" in logs else "train" if "loss" in logs else "summary"
        append_jsonl(self.log_path, {"step": state.global_step, "epoch": state.epoch, "time": time.time(),
                                     "kind": kind, **logs})
        if self.writer is not None:
            for key, tag in SCALAR_NAMES.items():
                value = logs.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(tag, value, state.global_step)
            self.writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def truncate_log(path: Path, last_step: int) -> None:
    """Keep only records up to ``last_step`` (a resumed run re-does the later steps); 0 starts a new log."""
    if not path.exists():
        return
    if last_step == 0:
        path.unlink()
        return
    write_jsonl(path, [row for row in read_log(path) if row.get("step", 0) <= last_step])


