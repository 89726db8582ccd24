"""labkit's overhead against a bare loop, measured inside ONE process on ONE loaded model.

    python -m labkit.bench.gpu_overhead --tokenizer DIR --out DIR [--model-dir DIR] [--shape 1b]
    python -m labkit.bench.gpu_overhead --tokenizer DIR --out DIR --interleave 15 --segments labkit,labkit:noamp
    python -m labkit.bench.gpu_overhead --tiny --device cpu --tokenizer DIR --out DIR --seq-len 128   (CPU smoke)

Separate processes (``labkit.bench.gpu_train``) measured the same bare loop at 44k to 51k tokens/s from one
run to the next on an H200, as large as the effect we want to see. Here the model is loaded once (through
``labkit.loading.load_for_training``, so both loops train the same Unsloth model) and the segments alternate:
a bare loop (AdamW, clipping, one padded batch a step), then labkit's trainer (``labkit.train.build_trainer`` and
``trainer.train()``), then the bare loop again, ... Each labkit segment is compared with the mean of the bare
segments on either side of it. (Unsloth empties its torch.compile cache when a Trainer starts after hand-run
forward passes, so the first labkit segment compiles again inside its warm-up steps; after each labkit segment
accelerate's autocast wrapper is taken off the model again, so bare segments run the model as the bare loop does.)
Variants of the labkit segment (suffixes):

- ``:padfree`` forces padding-free batches (what Unsloth picks by itself on H100 / H200; labkit's choice before
  ``labkit.train.padding_is_free``);
- ``:workers0`` loads batches in the training process (labkit's choice before ``labkit.train.GPU_LOADER_WORKERS``);
- ``:nopin`` (diagnostic) keeps the workers but no pinned memory, so no pin-memory thread beside the training
  thread in the training process;
- ``:hfflops`` the Trainer's own per-micro-batch FLOP count (labkit's choice before it cached the count);
- ``:noamp`` (diagnostic) no autocast around the forward.

and of the bare segment: ``bare:amp`` runs its forward under bf16 autocast (what the Trainer adds). Only plain
``bare`` segments are the reference.

With ``--interleave K`` each segment named is instead ONE labkit ``train()`` whose steps alternate, in blocks of
``--block-steps``, with as many bare steps run from its step-end callback (``interleaved_run``): the comparison
then spans seconds, not the 10-20 s between two segments, over which the bare loop's own speed drifted by 13%.

With ``--profile-steps N`` each of ``--profile-segments`` (default ``bare,labkit``) then runs under
``torch.profiler``: ``profile_<segment>.txt`` holds wall vs device-busy time per step (their gap is time the GPU
waited for the host), kernels and host syncs per step, the operators by device time and each host sync with the
Python stack that caused it; with ``--trace``, ``trace_<segment>.json.gz`` is the Chrome trace (Perfetto).

Per segment: tokens/s over the timed steps (wall clock between CUDA-synchronised step ends, like gpu_train), and
the host time labkit's segments spend fetching the batch (``get_batch_samples``) and in the training step
(launching forward + backward; close to the whole step time when the host, not the GPU, is the limit).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.bench import gpu_clocks, gpu_train

PARTIAL, CLOCKS = "gpu_overhead_partial.json", "gpu_clocks.csv"
DEFAULT_SEGMENTS = "bare,labkit,bare,labkit:hfflops,bare,labkit,bare,labkit:hfflops,bare,labkit,bare"
VARIANTS = {"padfree": "padding-free batches (forced)", "workers0": "no dataloader workers (labkit's CPU setting)",
            "nopin": "batches not pinned (no pin-memory thread in the training process)",
            "noamp": "accelerate's bf16 autocast off (the weights are bf16 already)",
            "amp": "accelerate's bf16 autocast on",
            "hfflops": "the Trainer's own FLOP count (walks every parameter each micro-batch; labkit caches it)",
            "stepsync": "the clock waits for the GPU after every step (sessions 2-3 timing)",
            **{name: gpu_train.VARIANTS[name] for name in ("nocheck", "perparam", "foreachmul", "forkserver")}}
BARE_VARIANTS = {"amp": "forward under torch.autocast(bf16), as the Trainer runs it",
                 "stepsync": "the clock waits for the GPU and the loss is read after every step (sessions 2-3)"}


def _timed(owner, name: str, totals: dict, key: str | None = None) -> None:
    """Wrap ``owner.name`` to add the host time spent in it to ``totals[key or name]``. No CUDA sync (it would
    change what is measured): a training step's host time close to the whole step's time means the host is the
    limit."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        totals[key or name] = totals.get(key or name, 0.0) + time.perf_counter() - start
        return out

    setattr(owner, name, wrapper)


@contextlib.contextmanager
def gc_timed():
    """Within: each pass of the garbage collector as ``(start, generation, ms)`` in the yielded list (start on the
    ``time.perf_counter`` clock, to keep only the passes inside a timed window).

    A pass of the oldest generation walks every object the process holds (millions after importing transformers,
    TRL and Unsloth); a loop that makes more Python objects a step triggers passes more often."""
    import gc

    passes: list[tuple[float, int, float]] = []
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            started[0] = now
        else:
            passes.append((started[0], info["generation"], 1000 * (now - started[0])))

    gc.callbacks.append(callback)
    try:
        yield passes
    finally:
        gc.callbacks.remove(callback)


def gc_in_window(passes: list[tuple[float, int, float]], window: list[float], steps: int) -> dict:
    """Collector time per timed step and passes by generation, counting only passes inside the timed window."""
    inside = [(generation, ms) for start, generation, ms in passes if window[0] <= start < window[1]]
    counts = [sum(1 for g, _ in inside if g == generation) for generation in range(3)]
    return {"gc_ms_per_step": sum(ms for _, ms in inside) / steps, "gc_passes": counts,
            "gc_gen2_ms": [round(ms, 1) for g, ms in inside if g == 2]}


def labkit_segment(args, cfg, loaded, rows: list[dict], variants: tuple[str, ...], callbacks: tuple = ()) -> dict:
    """labkit's trainer on ``rows`` (``build_trainer`` + ``train()``), with the variants applied to its config."""
    trainer = labkit_trainer(cfg, loaded, rows, variants)
    for callback in callbacks:
        trainer.add_callback(callback)
    try:
        return {**_train_timed(args, trainer, "stepsync" in variants), "trainer_args": _effective_args(trainer)}
    finally:
        _unwrap_forward(loaded.model)


def labkit_trainer(cfg, loaded, rows: list[dict], variants: tuple[str, ...]):
    """``labkit.train.build_trainer`` on ``rows``, with the variants (``VARIANTS``) applied."""
    import labkit.train as train
    from labkit.runs import Run

    run = Run.open("overhead", cfg, root=Path(tempfile.mkdtemp(prefix="labkit-overhead-")))
    original_config, original_choice = train.sft_config, train.padding_is_free
    if "padfree" in variants:   # Unsloth and TRL read padding_free in SFTTrainer's __init__: set it before

        def sft_config(*a, **kw):
            config = original_config(*a, **kw)
            config.padding_free = True
            return config

        train.sft_config, train.padding_is_free = sft_config, lambda *a, **kw: False
    try:
        trainer = train.build_trainer(cfg, run, loaded, rows, [])
    finally:
        train.sft_config, train.padding_is_free = original_config, original_choice
    loader_variants(trainer.args, variants)
    if "noamp" in variants or "amp" in variants:   # read when train() prepares the model (autocast wrapper)
        gpu_train.set_autocast(trainer, "amp" in variants)
    if "hfflops" in variants:
        from transformers import Trainer

        trainer.floating_point_ops = lambda inputs: Trainer.floating_point_ops(trainer, inputs)
    return trainer


def loader_variants(args, variants: tuple[str, ...]) -> None:
    """``:workers0`` and ``:nopin`` on the Trainer's arguments, which train() reads when it builds its dataloader."""
    if "workers0" in variants:
        args.dataloader_num_workers, args.dataloader_persistent_workers = 0, False
    if "nopin" in variants:
        args.dataloader_pin_memory = False


def _unwrap_forward(model) -> None:
    """Undo accelerate's autocast wrapper around ``model.forward`` (set on the instance when train() prepares the
    model, and left there): the next bare segment must run the model as the bare loop does."""
    original = model.__dict__.pop("_original_forward", None)
    if original is not None:
        model.forward = original


def _effective_args(trainer) -> dict:
    """The Trainer settings that decide per-step host work (Unsloth's SFTConfig changes some defaults)."""
    a = trainer.args
    keys = ("logging_nan_inf_filter", "torch_empty_cache_steps", "include_num_input_tokens_seen",
            "dataloader_num_workers", "dataloader_pin_memory", "optim", "max_grad_norm", "padding_free")
    out = {k: str(getattr(a, k, None)) for k in keys}
    config = getattr(trainer.accelerator, "dataloader_config", None)
    out["dataloader_non_blocking"] = str(getattr(config, "non_blocking", None))
    out["native_amp"] = str(trainer.accelerator.native_amp)
    return out


HOST_PHASES = ("get_batch_samples", "training_step", "_clip_grad_norm", "optimizer", "scheduler_zero_grad",
               "on_step_end", "_maybe_log_save_evaluate")


def _train_timed(args, trainer, every_step: bool = False) -> dict:
    """``trainer.train()`` timed like the bare loop, with the host time of each phase of a step (``HOST_PHASES``:
    ``optimizer`` runs from the pre- to the post-optimizer-step callback, ``scheduler_zero_grad`` from there to the
    step-end callbacks, ``on_step_end`` is the Trainer's and labkit's step-end callbacks, not the bench's). Host
    time outside the training step is time the GPU may wait when a step ends with the GPU drained."""
    from transformers import TrainerCallback

    totals: dict[str, float] = {}
    marks: list[dict] = []
    stamps: list[float] = []

    def add(name: str, seconds: float) -> None:
        totals[name] = totals.get(name, 0.0) + seconds

    class Phases(TrainerCallback):
        start = 0.0

        def on_pre_optimizer_step(self, *a, **kw):
            self.start = time.perf_counter()

        def on_optimizer_step(self, *a, **kw):
            add("optimizer", time.perf_counter() - self.start)
            self.start = time.perf_counter()

        def on_step_end(self, *a, **kw):
            add("scheduler_zero_grad", time.perf_counter() - self.start)
            marks.append(dict(totals))

    for callback in trainer.callback_handler.callbacks:
        _timed(callback, "on_step_end", totals, key="on_step_end")
    trainer.callback_handler.callbacks.insert(0, Phases())   # first: it closes the scheduler + zero_grad phase
    usage: list = []
    trainer.add_callback(gpu_train._wall_clock_callback(stamps, gpu_train.sync_steps(args, every_step), usage))
    for name in ("get_batch_samples", "training_step", "_clip_grad_norm", "_maybe_log_save_evaluate"):
        _timed(trainer, name, totals)
    trainer.train()
    result = gpu_train._result(args, stamps, [args.batch_size * args.seq_len] * len(stamps), {}, usage)
    first, last = marks[args.warmup - 1] if args.warmup else {}, marks[-1]
    for key in HOST_PHASES:
        result[f"{key}_ms"] = 1000 * (last.get(key, 0.0) - first.get(key, 0.0)) / result["timed_steps"]
    result["padding_free"] = bool(getattr(trainer.args, "padding_free", False))
    return result


def run_segments(args) -> dict:
    if args.device == "cuda":
        import unsloth  # noqa: F401  (before transformers / TRL, as labkit.env.import_unsloth_early does)
    from labkit.config import load_config
    from labkit.loading import load_for_training

    case = gpu_train.CASES[("labkit-unsloth-qlora" if args.qlora else "labkit-unsloth-bf16") if args.device == "cuda"
                           else "labkit-hf-bf16"]
    cfg = load_config("cpu-demo", gpu_train.bench_overrides(args, case))
    loaded = load_for_training(cfg)
    if args.interleave:
        from labkit.lean_steps import trained_weights

        initial = [p.detach().clone() for p in trained_weights(loaded.model)]
        runs = []
        for name in args.segments.split(","):
            runs.append(interleaved_run(args, cfg, loaded, name, seed=0, initial=initial))
            print(f"{name}: mean overhead {100 * statistics.mean(runs[-1]['overheads']):.1f}%", flush=True)
        return {"describe": loaded.describe(), "interleaved": runs}
    per_segment = args.batch_size * (args.warmup + args.steps)
    results, failed = [], []
    for index, name in enumerate(args.segments.split(",")):
        kind, *variants = name.split(":")
        rows = gpu_train.random_rows(per_segment, args.seq_len, args.vocab, seed=index)
        try:
            with gpu_train.labkit_switches(tuple(variants)), gc_timed() as collected:
                if kind == "bare":
                    result = gpu_train.hand_loop(args, loaded.model, rows, autocast="amp" in variants,
                                                 every_step="stepsync" in variants)
                else:
                    result = labkit_segment(args, cfg, loaded, rows, tuple(variants))
        except Exception as err:   # a variant that fails (e.g. on this machine) must not lose the other segments
            failed.append({"segment": name, "index": index, "error": f"{type(err).__name__}: {err}"[:500]})
            print(f"{name}: FAILED {failed[-1]['error']}", flush=True)
            _write_partial(args, loaded.describe(), results, failed)
            continue
        result.update(segment=name, **gc_in_window(collected, result["window"], result["timed_steps"]))
        results.append(result)
        print(f"{name}: {result['tokens_per_s']:,.0f} tokens/s; gc {result['gc_ms_per_step']:.2f} ms/step, "
              f"passes {result['gc_passes']}", flush=True)
        _write_partial(args, loaded.describe(), results, failed)
    profiles = {}
    if args.profile_steps:
        for name in args.profile_segments.split(","):
            text, profiles[name] = profile_segment(args, cfg, loaded, name)
            slug = name.replace(":", "_")
            (args.out / f"profile_{slug}.txt").write_text(text, encoding="utf-8")
            print(f"profile {name}: {json.dumps(profiles[name])}", flush=True)
    return {"describe": loaded.describe(), "segments": results, "summary": summarise(results), "profiles": profiles,
            "failed": failed}


def _write_partial(args, describe: str, results: list[dict], failed: list[dict]) -> None:
    """The segments so far, so that a run stopped by its time limit still leaves them behind (``--render``)."""
    payload = {"describe": describe, "segments": results, "failed": failed}
    (args.out / PARTIAL).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")


def interleaved_run(args, cfg, loaded, name: str, seed: int, initial: list) -> dict:
    """ONE labkit ``train()`` whose timed steps come in ``--interleave`` blocks of ``--block-steps``, and after
    each block as many bare-loop steps on the same model, run from labkit's step-end callback. Segments (one
    ``train()`` each) sit 10-20 s apart and the bare loop's speed drifts by up to 13% between them; blocks a few
    seconds apart see the same GPU. Each labkit block is compared with the mean of the bare blocks either side.

    Order: labkit's ``--warmup`` steps, one untimed bare block (its warm-up), then labkit block 1, bare block 1,
    ..., labkit block K, bare block K. The clock waits for the GPU only at block ends; a labkit block runs from
    the end of the bare block before it to its last step's end (its previous step's logging falls inside it, and
    with blocks of ``LABKIT_LOGGING_STEPS`` every block holds one logging step). The bare steps run the model's
    own forward (accelerate's autocast wrapper is set aside for them) with their own AdamW over the same weights,
    so they change the weights labkit trains: harmless for speed, and the same in every run. Every run starts
    from the same adapter weights (``initial``) and rows, so the logged losses of two runs are comparable (two
    runs of one setting show how far they differ by the GPU's nondeterminism alone).

    Seen on an H200 (session 5, reports/gpu_benchmark.md): with Unsloth QLoRA it ran as expected; with Unsloth
    bf16, steps of both loops ran at about 0.2 s instead of 0.15 s and slowed further within a run (not
    diagnosed; one suspect is torch.compile re-specialising Unsloth's compiled blocks for the two callers). So
    the overhead figure comes from the segments, and this mode compares labkit settings with each other."""
    variants = tuple(name.split(":")[1:])
    n, blocks, batch = args.block_steps, args.interleave, args.batch_size
    rows = gpu_train.random_rows(batch * (args.warmup + n * blocks), args.seq_len, args.vocab, seed=seed)
    bare_rows = gpu_train.random_rows(batch * n * (blocks + 1), args.seq_len, args.vocab, seed=seed + 1000)
    bare = gpu_train.BareSteps(loaded.model, bare_rows, batch)
    _restore(bare.params, initial)
    hook = _Interleave(bare, args.warmup, n)
    trainer = labkit_trainer(cfg, loaded, rows, variants)
    trainer.add_callback(hook.callback())
    try:
        trainer.train()
    finally:
        _unwrap_forward(loaded.model)
    tokens = n * batch * args.seq_len
    labkit = [tokens / s for s in hook.seconds["labkit"]]
    reference = [tokens / s for s in hook.seconds["bare"]]
    pairs = [1 - value / statistics.mean(reference[max(i - 1, 0):i + 1]) for i, value in enumerate(labkit)]
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"segment": name, "labkit_tokens_per_s": labkit, "bare_tokens_per_s": reference, "overheads": pairs,
            "logged_losses": losses, "trainer_args": _effective_args(trainer)}


def _restore(params: list, initial: list) -> None:
    import torch

    with torch.no_grad():
        for p, value in zip(params, initial):
            p.copy_(value)


class _Interleave:
    """The step-end hook of ``interleaved_run``: times labkit's blocks and runs (and times) the bare blocks."""

    def __init__(self, bare, warmup: int, block: int):
        self.bare, self.warmup, self.block = bare, warmup, block
        self.seconds: dict[str, list[float]] = {"labkit": [], "bare": []}
        self.mark: float | None = None
        self.next_batch = 0

    def callback(self):
        from transformers import TrainerCallback

        hook = self

        class Interleave(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                step = state.global_step
                if step >= hook.warmup and (step - hook.warmup) % hook.block == 0:
                    hook.block_end(model, timed_bare=step > hook.warmup)

        return Interleave()

    def block_end(self, model, timed_bare: bool) -> None:
        gpu_train._sync()
        now = time.perf_counter()
        if self.mark is not None:
            self.seconds["labkit"].append(now - self.mark)
        with _plain_forward(model):
            for i in range(self.block):
                self.bare.step(self.next_batch, read_loss=(i + 1) % gpu_train.LABKIT_LOGGING_STEPS == 0)
                self.next_batch += 1
        gpu_train._sync()
        self.mark = time.perf_counter()
        if timed_bare:
            self.seconds["bare"].append(self.mark - now)


@contextlib.contextmanager
def _plain_forward(model):
    """Within: ``model.forward`` is the model's own, without the autocast wrapper accelerate put on the instance."""
    wrapper = model.__dict__.get("forward")
    if wrapper is not None and "_original_forward" in model.__dict__:
        model.forward = model._original_forward
    try:
        yield model
    finally:
        if wrapper is not None:
            model.forward = wrapper


def interleaved_summary(runs: list[dict]) -> list[str]:
    lines = ["| run | labkit tokens/s (mean of blocks) | bare tokens/s (mean of blocks) | overhead: mean [95% CI] "
             "| median | blocks | logged losses (first, last) |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for run in runs:
        o, losses = run["overheads"], run["logged_losses"]
        loss_cell = f"{losses[0]:.4f}, {losses[-1]:.4f}" if losses else "-"
        lines.append(f"| {run['segment']} | {statistics.mean(run['labkit_tokens_per_s']):,.0f} | "
                     f"{statistics.mean(run['bare_tokens_per_s']):,.0f} | {100 * statistics.mean(o):.1f}%"
                     f"{_interval(o)} | {100 * statistics.median(o):.1f}% | {len(o)} | {loss_cell} |")
    for run in runs:
        lines += ["", f"{run['segment']}, per block (labkit tokens/s / bare tokens/s / overhead against the mean of "
                  "the bare blocks either side):", "",
                  "; ".join(f"{a:,.0f} / {b:,.0f} / {100 * o:.1f}%" for a, b, o in
                            zip(run["labkit_tokens_per_s"], run["bare_tokens_per_s"], run["overheads"]))]
    return lines


SYNC_EVENTS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "aten::_local_scalar_dense")


def profile_segment(args, cfg, loaded, name: str) -> tuple[str, dict]:
    """Segment ``name`` under ``torch.profiler``: two steps skipped (compile, warm-up), then ``--profile-steps``
    recorded. Returns the report text and its summary: wall and device-busy time per step (the gap between them
    is time the GPU waited for the host), kernels and host syncs per step. The report holds the operators by
    device time and every host sync with the Python stack that caused it; with ``--trace`` a gzipped Chrome trace
    goes beside it."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    kind, *variants = name.split(":")
    cuda = torch.cuda.is_available()
    short = argparse.Namespace(**{**vars(args), "warmup": 2, "steps": args.profile_steps})
    rows = gpu_train.random_rows(args.batch_size * (3 + args.profile_steps), args.seq_len, args.vocab, seed=99)
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    stamps: list[float] = []

    def on_step():
        stamps.append(time.perf_counter())
        prof.step()

    with profile(activities=activities, schedule=schedule(wait=2, warmup=1, active=args.profile_steps, repeat=1),
                 with_stack=True) as prof:
        if kind == "bare":
            gpu_train.hand_loop(short, loaded.model, rows, on_step=on_step, autocast="amp" in variants)
        else:
            labkit_segment(short, cfg, loaded, rows, tuple(variants), callbacks=(_step_hook(on_step),))
    summary = _profile_summary(prof, stamps[2:3 + args.profile_steps], args.profile_steps, cuda)
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    text = (f"{name}: {args.profile_steps} steps\n{json.dumps(summary, indent=1)}\n\n"
            + prof.key_averages().table(sort_by=sort, row_limit=45) + "\n\nHost syncs, by Python stack:\n"
            + _sync_stacks(prof))
    if args.trace:
        trace = args.out / f"trace_{name.replace(':', '_')}.json"
        prof.export_chrome_trace(str(trace))
        subprocess.run(["gzip", "-f", str(trace)], check=False)
    return text, summary


def _step_hook(hook):
    """A Trainer callback that synchronises CUDA at each step end, then calls ``hook()``."""
    from transformers import TrainerCallback

    class StepHook(TrainerCallback):
        def on_step_end(self, *a, **kw):
            gpu_train._sync()
            hook()

    return StepHook()


def _profile_summary(prof, stamps: list[float], steps: int, cuda: bool) -> dict:
    """Per recorded step: wall time, GPU time covered by at least one kernel or copy (intervals merged), the
    GPU's idle time between the first and last of them, kernel count and host syncs."""
    from torch.autograd import DeviceType

    wall_ms = 1000 * (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else None
    syncs: dict[str, float] = {}
    intervals = []
    for event in prof.events():
        if event.name in SYNC_EVENTS:
            syncs[event.name] = syncs.get(event.name, 0) + 1 / steps
        if cuda and event.device_type == DeviceType.CUDA:
            intervals.append((event.time_range.start, event.time_range.end))
    summary = {"wall_ms_per_step": wall_ms, "syncs_per_step": syncs,
               "note": "wall time under the profiler (slower than unprofiled)"}
    if intervals:
        intervals.sort()
        busy, (start, end) = 0.0, intervals[0]
        for a, b in intervals[1:]:
            if a > end:
                busy, start = busy + end - start, a
            end = max(end, b)
        busy += end - start
        span = max(b for _, b in intervals) - intervals[0][0]
        summary.update(device_busy_ms_per_step=busy / 1000 / steps,
                       device_idle_ms_per_step=(span - busy) / 1000 / steps, kernels_per_step=len(intervals) / steps)
    return summary


def _sync_stacks(prof, frames: int = 12) -> str:
    """Each host sync, grouped by its Python stack (innermost first). With ``with_stack`` this torch records the
    Python calls as parent events of the operators (``file.py(line): function``), so the stack is the chain of
    enclosing events; older releases put it in ``event.stack`` instead."""
    from collections import Counter

    found: Counter = Counter()
    for event in prof.events():
        if event.name not in SYNC_EVENTS:
            continue
        chain, owner = list(event.stack or []), event.cpu_parent
        while owner is not None and len(chain) < 4 * frames:
            chain.extend(owner.stack or [owner.name])
            owner = owner.cpu_parent
        python = [f for f in chain if ".py(" in f and "torch/profiler" not in f and "torch/nn/modules" not in f]
        found[(event.name, tuple(python[:frames]))] += 1
    lines = [f"- {name} x{count}:\n      " + "\n      ".join(stack or ("(no Python stack)",))
             for (name, stack), count in found.most_common()]
    return "\n".join(lines) or "(none)"


def reference_for(segment: str) -> str:
    """The bare segment a segment is compared with: ``bare``, or ``bare:stepsync`` under the every-step timing."""
    return "bare:stepsync" if "stepsync" in segment.split(":")[1:] else "bare"


def summarise(results: list[dict]) -> list[dict]:
    """Each segment that is not itself a reference against the mean of the nearest reference segment before it
    and after it (``reference_for``): labkit segments give labkit's overhead, ``bare:amp`` the cost of autocast."""
    names = [r["segment"] for r in results]
    out = []
    for i, r in enumerate(results):
        reference = reference_for(r["segment"])
        if r["segment"] == reference:
            continue
        before = [j for j in range(i - 1, -1, -1) if names[j] == reference][:1]
        after = [j for j in range(i + 1, len(names)) if names[j] == reference][:1]
        bare = [results[j]["tokens_per_s"] for j in before + after]
        if bare:
            mean = statistics.mean(bare)
            out.append({"segment": r["segment"], "index": i, "reference": reference, "bare_tokens_per_s": mean,
                        "tokens_per_s": r["tokens_per_s"], "overhead": 1 - r["tokens_per_s"] / mean})
            cycles = [results[j].get("mcycles_per_step") for j in before + after]
            if r.get("mcycles_per_step") and all(cycles):   # the same, counted in SM cycles (gpu_clocks)
                out[-1]["overhead_cycles"] = 1 - statistics.mean(cycles) / r["mcycles_per_step"]
    return out


def table(payload: dict) -> str:
    if "interleaved" in payload:
        return "\n".join(interleaved_summary(payload["interleaved"])) + "\n"
    lines = ["| # | segment | tokens/s | s/step | host ms/step fetching the batch | host ms/step in training_step "
             "| padding-free | gc ms/step (passes gen 0/1/2) | GPU: SM MHz, W, busy % | M SM cycles/step |",
             "| ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |"]
    for i, r in enumerate(payload["segments"]):
        fetch, step = r.get("get_batch_samples_ms"), r.get("training_step_ms")
        passes = "/".join(str(n) for n in r.get("gc_passes", ()))
        lines.append(f"| {i} | {r['segment']} | {r['tokens_per_s']:,.0f} | {r['s_per_step']:.4f} | "
                     f"{_ms(fetch)} | {_ms(step)} | {r.get('padding_free', '-')} | "
                     f"{_ms(r.get('gc_ms_per_step'), 2)} ({passes or '-'}) | {gpu_train.gpu_cell(r)} | "
                     f"{_ms(r.get('mcycles_per_step'), 0)} |")
    lines += _host_lines(payload["segments"])
    lines += ["", "| segment | vs mean of the nearest reference segments (tokens/s) | overhead | per SM cycle |",
              "| --- | ---: | ---: | ---: |"]
    for s in payload["summary"]:
        cycles = s.get("overhead_cycles")
        lines.append(f"| #{s['index']} {s['segment']} | {s['tokens_per_s']:,.0f} vs {s['bare_tokens_per_s']:,.0f} "
                     f"({s['reference']}) | {100 * s['overhead']:.1f}% | "
                     f"{'-' if cycles is None else f'{100 * cycles:.1f}%'} |")
    lines.append("")
    for key, what in (("overhead", "overhead"), ("overhead_cycles", "overhead per SM cycle")):
        by_kind: dict[str, list[float]] = {}
        for s in payload["summary"]:
            if key in s:
                by_kind.setdefault(s["segment"], []).append(s[key])
        for kind, values in by_kind.items():
            lines.append(f"- {kind}: mean {what} {100 * statistics.mean(values):.1f}%{_interval(values)} over "
                         f"{len(values)} segment(s) ({', '.join(f'{100 * v:.1f}%' for v in values)})")
    lines += [f"- segment #{f['index']} {f['segment']} FAILED: {f['error']}" for f in payload.get("failed") or ()]
    return "\n".join(lines + _profile_lines(payload.get("profiles") or {})) + "\n"


def _host_lines(segments: list[dict]) -> list[str]:
    """Host ms per step by phase (no CUDA sync inside): where the host spends a step, labkit's and the bare loop's."""
    phases = [k for k in (*HOST_PHASES, *gpu_train.BARE_PHASES) if any(f"{k}_ms" in r for r in segments)]
    if not phases:
        return []
    lines = ["", "Host time per step (ms, no CUDA sync inside; 'outside' = step time minus the training step or the "
             "forward + backward):", "",
             "| # | segment | " + " | ".join(phases) + " | outside | process CPU s per s | minor faults/step "
             "| involuntary switches/step | training thread's CPUs (moves) "
             "| training thread on a CPU / waiting, ms/step | machine's CPU time stolen % |",
             "| ---: | --- |" + " ---: |" * (len(phases) + 4) + " --- | ---: | ---: |"]
    for i, r in enumerate(segments):
        inner = r.get("training_step_ms", r.get("forward_backward_ms"))
        outside = None if inner is None else 1000 * r["s_per_step"] - inner
        cells = [_ms(r.get(f"{k}_ms")) for k in phases]
        cpu = r.get("host_cpu_s_per_step")
        lines.append(f"| {i} | {r['segment']} | " + " | ".join(cells) + f" | {_ms(outside)} | "
                     f"{_ms(None if cpu is None else cpu / r['s_per_step'], 2)} | "
                     f"{_ms(r.get('minor_faults_per_step'), 0)} | {_ms(r.get('involuntary_switches_per_step'))} | "
                     f"{_cpus(r)} | {_ms(r.get('thread_on_cpu_ms_per_step'))} / "
                     f"{_ms(r.get('thread_wait_ms_per_step'))} | {_ms(r.get('steal_pct'), 2)} |")
    return lines


def _cpus(result: dict) -> str:
    cpus = result.get("cpus")
    return "-" if cpus is None else f"{','.join(map(str, cpus))} ({result['cpu_moves']})"


def mean_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% percentile-bootstrap interval of the mean (labkit's own, as for evaluation scores); None under 3
    values."""
    if len(values) < 3:
        return None
    from labkit.metrics import bootstrap_ci

    _, low, high = bootstrap_ci(values, n_resamples=10_000)
    return low, high


def _interval(values: list[float]) -> str:
    interval = mean_interval(values)
    return "" if interval is None else f" [95% CI {100 * interval[0]:.1f}%, {100 * interval[1]:.1f}%]"


def _profile_lines(profiles: dict) -> list[str]:
    if not profiles:
        return []
    lines = ["", "Under torch.profiler (slower than the timed segments; see profile_<segment>.txt):", "",
             "| segment | wall ms/step | GPU busy ms/step | GPU idle ms/step | kernels/step | host syncs/step |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, p in profiles.items():
        syncs = ", ".join(f"{k} {v:.1f}" for k, v in p["syncs_per_step"].items()) or "0"
        lines.append(f"| {name} | {_ms(p.get('wall_ms_per_step'))} | {_ms(p.get('device_busy_ms_per_step'))} | "
                     f"{_ms(p.get('device_idle_ms_per_step'))} | {_ms(p.get('kernels_per_step'), 0)} | {syncs} |")
    return lines


def _ms(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m labkit.bench.gpu_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--model-dir", type=Path, help="the random model (built there when missing)")
    parser.add_argument("--shape", default="1b", choices=sorted(gpu_train.SHAPES))
    parser.add_argument("--tiny", action="store_true", help="same as --shape tiny")
    parser.add_argument("--qlora", action="store_true", help="Unsloth QLoRA (nf4) instead of bf16 LoRA (CUDA)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--segments", default=DEFAULT_SEGMENTS,
                        help="comma-separated: bare, labkit, labkit:" + ", labkit:".join(VARIANTS))
    parser.add_argument("--interleave", type=int, default=0, metavar="K",
                        help="instead of segments: for each labkit segment named, ONE train() with K timed blocks "
                             "of --block-steps, each followed by as many bare steps (see interleaved_run)")
    parser.add_argument("--block-steps", type=int, default=gpu_train.LABKIT_LOGGING_STEPS)
    parser.add_argument("--profile-steps", type=int, default=0,
                        help="then profile this many steps of each --profile-segments (torch.profiler, in --out)")
    parser.add_argument("--profile-segments", default="bare,labkit", help="segments to profile (as --segments)")
    parser.add_argument("--trace", action="store_true",
                        help="also write each profile's Chrome trace (gzipped; about 8 MB a 1B segment of 3 steps)")
    parser.add_argument("--render", action="store_true",
                        help=f"no run: write the table from {PARTIAL} and {CLOCKS} in --out (a run that timed out)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in [*args.segments.split(","), *args.profile_segments.split(",")]:
        kind, *variants = name.split(":")
        allowed = VARIANTS if kind == "labkit" else BARE_VARIANTS
        if kind not in ("bare", "labkit") or any(v not in allowed for v in variants):
            parser.error(f"segment {name!r}: use labkit[:VARIANT] ({', '.join(VARIANTS)}) or bare[:VARIANT] "
                         f"({', '.join(BARE_VARIANTS)})")
    if args.interleave:
        if any(name.split(":")[0] != "labkit" or "stepsync" in name for name in args.segments.split(",")):
            parser.error("--interleave runs labkit segments (labkit[:VARIANT], not stepsync) against bare blocks")
        if args.profile_steps:
            parser.error("--interleave and --profile-steps: profile in a separate run")
        args.steps = args.interleave * args.block_steps   # labkit's max_steps = warm-up + timed steps
    args.shape = "tiny" if args.tiny else args.shape
    args.model_dir = str(args.model_dir or args.out / "model")
    args.vocab = gpu_train.SHAPES[args.shape]["vocab_size"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.build_only:
        gpu_train.build_model(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render:   # a run stopped by its time limit: its segments so far and the clock samples
        partial = json.loads((args.out / PARTIAL).read_text(encoding="utf-8"))
        finish(args, {**partial, "summary": summarise(partial["segments"]), "profiles": {}},
               gpu_clocks.read_samples(args.out / CLOCKS))
        return
    if not (Path(args.model_dir) / "config.json").exists():
        # In another process: building imports transformers, and Unsloth must be imported before it here.
        subprocess.run([sys.executable, "-m", "labkit.bench.gpu_overhead", *(argv or sys.argv[1:]), "--build-only"],
                       check=True)
    with gpu_clocks.sampled(args.out / CLOCKS) as sampling:
        payload = run_segments(args)
    finish(args, payload, gpu_clocks.read_samples(sampling))   # read once the sampler has stopped (and flushed)


def finish(args, payload: dict, samples: list[dict]) -> None:
    """Add the GPU clocks to the segments, then write gpu_overhead.json and the table (gpu_overhead.md)."""
    if samples and "segments" in payload:
        for segment in payload["segments"]:
            gpu_clocks.add_clocks(segment, samples)
        payload["summary"] = summarise(payload["segments"])
    payload["args"] = {k: str(v) for k, v in vars(args).items()}
    (args.out / "gpu_overhead.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    timing = (f"{args.interleave} blocks of {args.block_steps} labkit steps, each followed by {args.block_steps} "
              f"bare steps, after {args.warmup} warm-up steps, per run" if args.interleave else
              f"{args.steps} timed steps after {args.warmup} warm-up per segment")
    text = f"{payload['describe']}; {args.shape} shape, batch {args.batch_size} x {args.seq_len}, {timing}\n\n" \
           + table(payload)
    (args.out / "gpu_overhead.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
