"""labkit's overhead against a bare loop, measured inside ONE process on ONE loaded model.

    python -m labkit.bench.gpu_overhead --tokenizer DIR --out DIR [--model-dir DIR] [--shape 1b]
    python -m labkit.bench.gpu_overhead --tiny --device cpu --tokenizer DIR --out DIR --seq-len 128   (CPU smoke)

Separate processes (``labkit.bench.gpu_train``) measured the same bare loop at 44k to 51k tokens/s from one
run to the next on an H200, as large as the effect we want to see. Here the model is loaded once (through
``labkit.loading.load_for_training``, so both loops train the same Unsloth model) and the segments alternate:
a bare loop (AdamW, clipping, one padded batch a step), then labkit's trainer (``labkit.train.build_trainer`` and
``trainer.train()``), then the bare loop again, ... Each labkit segment is compared with the mean of the bare
segments on either side of it. (Unsloth empties its torch.compile cache when a Trainer starts after hand-run
forward passes, so the first labkit segment compiles again inside its warm-up steps.) Variants of the labkit
segment (suffixes):

- ``:padfree`` forces padding-free batches (what Unsloth picks by itself on H100 / H200; labkit's choice before
  ``labkit.train.padding_is_free``);
- ``:workers0`` loads batches in the training process (labkit's choice before ``labkit.train.GPU_LOADER_WORKERS``).

With ``--profile-steps N``, one bare and one labkit segment then run under ``torch.profiler`` and their operator
tables (by device time) go to ``profile_bare.txt`` and ``profile_labkit.txt``.

Per segment: tokens/s over the timed steps (wall clock between CUDA-synchronised step ends, like gpu_train), and
the host time labkit's segments spend fetching the batch (``get_batch_samples``) and in the training step
(launching forward + backward; close to the whole step time when the host, not the GPU, is the limit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.bench import gpu_train

DEFAULT_SEGMENTS = "bare,labkit,bare,labkit:workers0,bare,labkit,bare,labkit:workers0,bare,labkit,bare"
VARIANTS = {"padfree": "padding-free batches (forced)", "workers0": "no dataloader workers (labkit's CPU setting)"}


def _timed(owner, name: str, totals: dict) -> None:
    """Wrap ``owner.name`` to add the host time spent in it to ``totals[name]``. No CUDA sync (it would change
    what is measured): a training step's host time close to the whole step's time means the host is the limit."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - start
        return out

    setattr(owner, name, wrapper)


def labkit_segment(args, cfg, loaded, rows: list[dict], variants: tuple[str, ...], callbacks: tuple = ()) -> dict:
    """labkit's trainer on ``rows`` (``build_trainer`` + ``train()``), with the variants applied to its config."""
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
    if "workers0" in variants:   # the Trainer reads these when train() builds its dataloader
        trainer.args.dataloader_num_workers, trainer.args.dataloader_persistent_workers = 0, False
    for callback in callbacks:
        trainer.add_callback(callback)
    return _train_timed(args, trainer)


def _train_timed(args, trainer) -> dict:
    from transformers import TrainerCallback

    totals: dict[str, float] = {}
    marks: list[dict] = []
    stamps: list[float] = []

    class Snapshot(TrainerCallback):
        def on_step_end(self, *a, **kw):
            marks.append(dict(totals))

    trainer.add_callback(gpu_train._wall_clock_callback(stamps))
    trainer.add_callback(Snapshot())
    _timed(trainer, "get_batch_samples", totals)
    _timed(trainer, "training_step", totals)
    trainer.train()
    result = gpu_train._result(args, stamps, [args.batch_size * args.seq_len] * len(stamps), {})
    first, last = marks[args.warmup - 1] if args.warmup else {}, marks[-1]
    for key in ("get_batch_samples", "training_step"):
        result[f"{key}_ms"] = 1000 * (last.get(key, 0.0) - first.get(key, 0.0)) / result["timed_steps"]
    result["padding_free"] = bool(getattr(trainer.args, "padding_free", False))
    return result


def run_segments(args) -> dict:
    if args.device == "cuda":
        import unsloth  # noqa: F401  (before transformers / TRL, as labkit.env.import_unsloth_early does)
    from labkit.config import load_config
    from labkit.loading import load_for_training

    case = gpu_train.CASES["labkit-unsloth-bf16" if args.device == "cuda" else "labkit-hf-bf16"]
    cfg = load_config("cpu-demo", gpu_train.bench_overrides(args, case))
    loaded = load_for_training(cfg)
    per_segment = args.batch_size * (args.warmup + args.steps)
    results = []
    for index, name in enumerate(args.segments.split(",")):
        kind, *variants = name.split(":")
        rows = gpu_train.random_rows(per_segment, args.seq_len, args.vocab, seed=index)
        if kind == "bare":
            result = gpu_train.hand_loop(args, loaded.model, rows)
        else:
            result = labkit_segment(args, cfg, loaded, rows, tuple(variants))
        result["segment"] = name
        results.append(result)
        print(f"{name}: {result['tokens_per_s']:,.0f} tokens/s", flush=True)
    if args.profile_steps:
        for kind in ("bare", "labkit"):
            (args.out / f"profile_{kind}.txt").write_text(profile_table(args, cfg, loaded, kind), encoding="utf-8")
    return {"describe": loaded.describe(), "segments": results, "summary": summarise(results)}


def profile_table(args, cfg, loaded, kind: str) -> str:
    """``kind`` ("bare" or "labkit") under ``torch.profiler``: one step skipped, one warm-up, then
    ``--profile-steps`` recorded; the operators by their own device time (CPU time without CUDA)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()
    short = argparse.Namespace(**{**vars(args), "warmup": 2, "steps": args.profile_steps})
    rows = gpu_train.random_rows(args.batch_size * (2 + args.profile_steps), args.seq_len, args.vocab, seed=99)
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    steps = schedule(wait=1, warmup=1, active=args.profile_steps, repeat=1)   # one recorded window
    with profile(activities=activities, schedule=steps) as prof:
        if kind == "bare":
            gpu_train.hand_loop(short, loaded.model, rows, on_step=prof.step)
        else:
            class ProfilerStep(TrainerCallback):
                def on_step_end(self, *a, **kw):
                    prof.step()

            labkit_segment(short, cfg, loaded, rows, (), callbacks=(ProfilerStep(),))
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    return f"{kind}: {args.profile_steps} steps\n" + prof.key_averages().table(sort_by=sort, row_limit=40)


def summarise(results: list[dict]) -> list[dict]:
    """Each labkit segment against the mean of the bare segments next to it."""
    out = []
    for i, r in enumerate(results):
        if r["segment"] == "bare":
            continue
        bare = [results[j]["tokens_per_s"] for j in (i - 1, i + 1)
                if 0 <= j < len(results) and results[j]["segment"] == "bare"]
        if bare:
            reference = statistics.mean(bare)
            out.append({"segment": r["segment"], "index": i, "bare_tokens_per_s": reference,
                        "tokens_per_s": r["tokens_per_s"], "overhead": 1 - r["tokens_per_s"] / reference})
    return out


def table(payload: dict) -> str:
    lines = ["| # | segment | tokens/s | s/step | host ms/step fetching the batch | host ms/step in training_step "
             "| padding-free |",
             "| ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for i, r in enumerate(payload["segments"]):
        fetch, step = r.get("get_batch_samples_ms"), r.get("training_step_ms")
        lines.append(f"| {i} | {r['segment']} | {r['tokens_per_s']:,.0f} | {r['s_per_step']:.4f} | "
                     f"{'-' if fetch is None else f'{fetch:.1f}'} | {'-' if step is None else f'{step:.1f}'} | "
                     f"{r.get('padding_free', '-')} |")
    lines += ["", "| labkit segment | vs mean of neighbouring bare segments (tokens/s) | overhead |",
              "| --- | ---: | ---: |"]
    for s in payload["summary"]:
        lines.append(f"| #{s['index']} {s['segment']} | {s['tokens_per_s']:,.0f} vs {s['bare_tokens_per_s']:,.0f} | "
                     f"{100 * s['overhead']:.1f}% |")
    by_kind: dict[str, list[float]] = {}
    for s in payload["summary"]:
        by_kind.setdefault(s["segment"], []).append(s["overhead"])
    lines.append("")
    for kind, values in by_kind.items():
        lines.append(f"- {kind}: mean overhead {100 * statistics.mean(values):.1f}% over {len(values)} segment(s) "
                     f"({', '.join(f'{100 * v:.1f}%' for v in values)})")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m labkit.bench.gpu_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--model-dir", type=Path, help="the random model (built there when missing)")
    parser.add_argument("--shape", default="1b", choices=sorted(gpu_train.SHAPES))
    parser.add_argument("--tiny", action="store_true", help="same as --shape tiny")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--segments", default=DEFAULT_SEGMENTS,
                        help="comma-separated: bare, labkit, labkit:" + ", labkit:".join(VARIANTS))
    parser.add_argument("--profile-steps", type=int, default=0,
                        help="then profile this many bare and labkit steps (torch.profiler tables in --out)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in args.segments.split(","):
        kind, *variants = name.split(":")
        if kind not in ("bare", "labkit") or any(v not in VARIANTS for v in variants) or (kind == "bare" and variants):
            parser.error(f"segment {name!r}: use bare, labkit or labkit:VARIANT ({', '.join(VARIANTS)})")
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
    if not (Path(args.model_dir) / "config.json").exists():
        # In another process: building imports transformers, and Unsloth must be imported before it here.
        subprocess.run([sys.executable, "-m", "labkit.bench.gpu_overhead", *(argv or sys.argv[1:]), "--build-only"],
                       check=True)
    payload = run_segments(args)
    payload["args"] = {k: str(v) for k, v in vars(args).items()}
    (args.out / "gpu_overhead.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    text = f"{payload['describe']}; {args.shape} shape, batch {args.batch_size} x {args.seq_len}, " \
           f"{args.steps} timed steps after {args.warmup} warm-up per segment\n\n" + table(payload)
    (args.out / "gpu_overhead.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
