"""Which process am I? Rank helpers for training launched with ``accelerate launch --num_processes N``.

``accelerate launch`` (like ``torchrun``) starts one process per device and tells each its place through the
environment: ``RANK`` (0..N-1 over all machines), ``LOCAL_RANK`` (0..n-1 on this machine) and ``WORLD_SIZE``.
labkit reads those variables rather than asking ``torch.distributed`` so that the answers are right before the
process group exists (a run folder is opened before the Trainer initialises it). Without a launcher every
helper answers as the only process: rank 0 of 1.

Rules the training code follows with these helpers:

- every process loads its own copy of the model onto its own GPU (``cuda:LOCAL_RANK``, see :func:`setup`);
- only the main process (rank 0) writes run files: config, logs, TensorBoard, summary, adapter;
- token counts in the training log are summed over all processes (:func:`sum_over_processes`), so the logged
  ``tokens_per_s`` is the whole job's throughput, not one GPU's.
"""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """True in the process that writes run files (rank 0; also when there is no launcher)."""
    return rank() == 0


def local_device(device: str) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` under a launcher (each process trains on its own GPU); else unchanged."""
    if device == "cuda" and is_distributed():
        return f"cuda:{local_rank()}"
    return device


def setup(device: str = "cuda") -> None:
    """Start the process group and pin this process's GPU (a no-op without a launcher).

    Accelerate's ``PartialState`` reads the launcher's environment, initialises ``torch.distributed`` (NCCL on
    GPUs; gloo when ``device`` is not ``cuda``) and calls ``torch.cuda.set_device(LOCAL_RANK)``, so that a plain
    ``.to("cuda")`` (and anything else that uses the current device) lands on this process's GPU instead of
    every process crowding onto GPU 0. The Trainer later finds the same (singleton) state; its
    ``use_cpu=True`` asks for the same CPU state, which is why ``device`` must be passed here.
    """
    if not is_distributed():
        return
    from accelerate import PartialState

    PartialState(cpu=device != "cuda")


def wait_for_everyone() -> None:
    """A barrier, so that e.g. rank 0 finishes writing a file before the others read or replace it."""
    import torch.distributed as dist

    if is_distributed() and dist.is_available() and dist.is_initialized():
        dist.barrier()


def sum_over_processes(values: dict[str, float]) -> dict[str, float]:
    """``values`` summed over every process (one all-reduce); unchanged without a launcher.

    All processes must call it at the same point (the Trainer logs on every process at the same steps).
    """
    import torch
    import torch.distributed as dist

    if not (is_distributed() and dist.is_available() and dist.is_initialized()) or not values:
        return dict(values)
    device = f"cuda:{local_rank()}" if dist.get_backend() == "nccl" else "cpu"
    keys = sorted(values)
    # float64 holds token counts exactly far beyond any run's size.
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return dict(zip(keys, tensor.tolist()))


def globalize_token_rates(record: dict) -> dict:
    """A drained TokenMeter record with token counts summed over processes and the rates recomputed.

    Every process steps in lock-step under DDP (the gradient all-reduce synchronises them), so this
    process's step time is the job's step time; ``*_per_rank`` fields keep this process's own rates.
    """
    if not is_distributed():
        return record
    out = dict(record)
    totals = sum_over_processes({"tokens": record["tokens"], "trained_tokens": record["trained_tokens"]})
    seconds = max(record["step_seconds"], 1e-9)
    for key in ("tokens", "trained_tokens"):
        out[f"{key}_per_s_per_rank"] = record[f"{key}_per_s"]
        out[key] = int(totals[key])
        out[f"{key}_per_s"] = totals[key] / seconds
    out["world_size"] = world_size()
    return out


def control_group():
    """A gloo process group for small control flags (e.g. "stop now?"), or None without a launcher.

    On GPUs the default group is NCCL, whose collectives run on the device: reading their result waits for every
    queued kernel (a host sync each step). A gloo group reduces CPU tensors without touching the GPU. Every
    process must call this at the same point (creating a group is collective)."""
    import torch.distributed as dist

    if not (is_distributed() and dist.is_available() and dist.is_initialized()):
        return None
    return dist.new_group(backend="gloo")


def any_process(flag: bool, group=None) -> bool:
    """True on every process when ``flag`` is true on at least one (one all-reduce); ``flag`` without a launcher.

    Every process must call it at the same point. ``group`` from :func:`control_group` keeps it off the GPU."""
    import torch
    import torch.distributed as dist

    if not (is_distributed() and dist.is_available() and dist.is_initialized()):
        return bool(flag)
    on_gpu = group is None and dist.get_backend() == "nccl"
    tensor = torch.tensor([int(bool(flag))], device=f"cuda:{local_rank()}" if on_gpu else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=group)
    return bool(tensor.item())
