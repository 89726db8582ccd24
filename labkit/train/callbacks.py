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
    """Counts tokens per micro-batch and time per optimizer step; drained into each logged record.

    With ``defer`` (set on CUDA) the counts and the loss guard accumulate on the device and are read only at
    steps that log, evaluate or save, and at the last step (see :meth:`StepTimer.on_step_end`): on a GPU,
    reading a value waits for every queued kernel (a host sync), and a few syncs per micro-batch cost several
    percent of a 0.2 s step. A non-finite loss is then reported at the next such step, still before any
    checkpoint or adapter is written. On CPU reading costs nothing, so every check happens at once."""

    defer: bool = False

    trained: object = 0           # label tokens (assistant replies) in the current logging window
    tokens: object = 0            # non-padding tokens in the window
    seconds: float = 0.0          # time spent inside optimizer steps in the window
    cpu_seconds: float = 0.0      # CPU time of this process (all threads) in those steps: on a shared machine
    steps: int = 0                # it shows the work done, while wall time also counts waiting for the CPU
    empty_batches: int = 0        # over the whole session
    _pending_empty: object = field(default=0, repr=False)   # empty micro-batches not yet reported (CUDA)
    _loss_finite: object = field(default=None, repr=False)  # AND of isfinite(loss) since the last check (CUDA)
    _step_start: float | None = field(default=None, repr=False)
    _cpu_start: float = field(default=0.0, repr=False)
    _last_end: tuple[float, float] | None = field(default=None, repr=False)   # (wall, CPU) at the last step end

    def add_batch(self, inputs: dict):
        labels = inputs["labels"]
        # Labels are shifted inside the model: the first position of each sequence predicts nothing.
        trained = self._value((labels[..., 1:] != -100).sum())
        if "attention_mask" in inputs:
            tokens = self._value(inputs["attention_mask"].sum())
        else:  # padding-free / packed batches carry position_ids and no attention mask
            tokens = int(labels.numel()) if "position_ids" not in inputs else int(inputs["position_ids"].numel())
        self.trained += trained
        self.tokens += tokens
        if isinstance(trained, int):
            if trained == 0:
                self._report_empty(1)
        else:
            self._pending_empty = self._pending_empty + (trained == 0)
        return trained

    def _value(self, count):
        return count if self.defer else int(count)

    def _report_empty(self, count: int) -> None:
        if count:
            self.empty_batches += count
            warnings.warn(f"a training batch has no trained (assistant) tokens ({self.empty_batches} so far): "
                          "check data.max_seq_length against the length of your prompts", EmptyBatchWarning,
                          stacklevel=3)

    def add_loss(self, loss, step: int) -> None:
        """Stop at a non-finite loss: at once, or with ``defer`` at the next :meth:`check`."""
        if not self.defer:
            check_loss(loss, step)
            return
        import torch

        finite = torch.isfinite(loss.detach())
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite

    def check(self, step: int) -> None:
        """Read what accumulated on the device (one host sync); raise if a loss was not finite."""
        empty, self._pending_empty = int(self._pending_empty), 0
        self._report_empty(empty)
        if self._loss_finite is not None:
            finite, self._loss_finite = bool(self._loss_finite), None
            if not finite:
                raise TrainingDiverged(step, "the training loss became NaN/inf (at or before this step)")

    def start_step(self) -> None:
        """A step's time runs from the end of the previous step: fetching its batch and logging the previous one
        are training time too (a timer of the step alone left them out, and on a GPU the wait for the device can
        fall between steps). After :meth:`pause` it runs from the step's own start."""
        if self._last_end is None:
            self._step_start, self._cpu_start = time.perf_counter(), time.process_time()
        else:
            self._step_start, self._cpu_start = self._last_end

    def end_step(self) -> None:
        if self._step_start is not None:
            now = (time.perf_counter(), time.process_time())
            self.seconds += now[0] - self._step_start
            self.cpu_seconds += now[1] - self._cpu_start
            self.steps += 1
            self._step_start, self._last_end = None, now

    def pause(self) -> None:
        """Leave what happens before the next step (an evaluation, a checkpoint, a new ``train()``) out of its time."""
        self._last_end = None

    def drain(self) -> dict:
        """Metrics of the window since the last log, then reset the window."""
        seconds = max(self.seconds, 1e-9)
        trained, tokens = int(self.trained), int(self.tokens)
        out = {
            "trained_tokens": trained, "tokens": tokens, "step_seconds": self.seconds,
            "step_cpu_seconds": self.cpu_seconds,
            "step_time": self.seconds / max(self.steps, 1),
            "trained_tokens_per_s": trained / seconds, "tokens_per_s": tokens / seconds,
            "rss_mb": current_rss_mb(), "peak_rss_mb": peak_rss_mb(), "empty_batches": self.empty_batches,
        }
        gpu = peak_gpu_mb()
        if gpu is not None:
            out["peak_gpu_mb"] = gpu
        self.trained = self.tokens = self.steps = 0
        self.seconds = self.cpu_seconds = 0.0
        return out


class StepTimer(TrainerCallback):
    """Times each optimizer step and checks the loss and adapter weights after it, before any checkpoint is
    written. On CPU the check runs every step (it costs nothing there); on a GPU only at steps that log,
    evaluate or save anyway, and at the last step (the Trainer's flow callback has set those flags already)."""

    def __init__(self, meter: TokenMeter):
        self.meter = meter

    def on_train_begin(self, args, state, control, **kwargs):
        self.meter.pause()

    def on_step_begin(self, args, state, control, **kwargs):
        self.meter.start_step()

    def on_evaluate(self, args, state, control, **kwargs):
        self.meter.pause()

    def on_save(self, args, state, control, **kwargs):
        self.meter.pause()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.meter.end_step()
        due = (control.should_log or control.should_save or control.should_evaluate
               or control.should_training_stop or state.global_step >= state.max_steps)
        if model is not None and (due or not self.meter.defer):
            self.meter.check(state.global_step)
            if not trainable_weights_finite(model):
                raise TrainingDiverged(state.global_step, "the adapter weights became NaN/inf")


def trainable_weights_finite(model) -> bool:
    """Whether every adapter weight is finite, in ONE device sync and a few kernels: a weight's largest magnitude
    (its inf-norm, which keeps a NaN) is finite iff all its values are. Exact: no sum that could overflow.

    On CUDA torch computes the inf-norms of all adapter tensors with multi-tensor kernels, instead of an isfinite +
    all per tensor (448 launches for the 224 LoRA tensors of a 1B model): less host work, though on an H200 the two
    could not be told apart in tokens/s. The slowdown once blamed on another multi-tensor check (commit 035c376)
    showed up with no check at all, too (reports/gpu_benchmark.md, session 6)."""
    import torch

    from labkit.train.lean_steps import trained_weights

    weights = trained_weights(model)
    if not weights:
        return True
    with torch.no_grad():
        return bool(torch.isfinite(largest_magnitude(weights)))


def largest_magnitude(tensors: list):
    """max |x| over ``tensors`` as a 0-d tensor on their device (NaN if any value is NaN); no host sync."""
    import torch

    total_norm = getattr(torch.nn.utils, "get_total_norm", None)   # torch >= 2.6: multi-tensor kernels on CUDA
    if total_norm is not None:
        return total_norm(tensors, float("inf"))
    return torch.stack([t.detach().abs().amax().float() for t in tensors]).amax()


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
    """Writes every Trainer log record to ``train_log.jsonl`` and its scalars to TensorBoard (unless ``tb_dir`` is
    None).

    Under ``accelerate launch`` every process gets these calls; only the main one (world process zero) writes."""

    def __init__(self, log_path: Path, tb_dir: Path | None, resume_step: int = 0):
        self.log_path = Path(log_path)
        self.tb_dir = Path(tb_dir) if tb_dir is not None else None  # None: no TensorBoard (train.report_to)
        self.resume_step = resume_step
        self.writer = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        truncate_log(self.log_path, self.resume_step)
        if self.tb_dir is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run wrote after the checkpoint we resume from.
        self.writer = SummaryWriter(str(self.tb_dir), purge_step=self.resume_step + 1 if self.resume_step else None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
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


