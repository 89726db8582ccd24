"""Multi-GPU (DDP) scaling of labkit's training: 1 GPU vs N GPUs at the same global batch, same data, same seed.

    python -m benchmarks.multi_gpu --tokenizer DIR --out DIR [--global-batch 16,8] [--backend unsloth]
    python -m benchmarks.multi_gpu --tiny --device cpu --tokenizer DIR --out DIR --seq-len 128 --global-batch 4
                                                                               (CPU smoke run: 2 processes, gloo)

Each configuration is one ``accelerate launch --config_file labkit/accelerate/ddp.yaml --num_processes N`` (or
``fsdp.yaml`` with ``--accelerate-config fsdp``) of the
same labkit training (``load_for_training`` + ``build_trainer``: TRL SFTTrainer + labkit callbacks; by default
transformers + PEFT, bf16 LoRA on all 7 projections, gradient checkpointing) on the random-initialised model of
``benchmarks.gpu_train`` (built once, saved to ``<out>/model``). Per-device batch = global batch / N, so the
optimizer sees the same global batch. The random rows are the same list in every process and every
configuration; the Trainer's seeded sampler draws the same permutation and accelerate hands process r the
micro-batches r, r+N, ... of it, so global step s trains the same rows whether N is 1 or 2 (checked: each
process records the first token of every row it trains, and the table says whether the sets match per step).

Configurations, for each global batch B of ``--global-batch`` (each skipped when the time budget is short):
``1 GPU x B``, ``N GPUs x B/N`` for each N in ``--gpus`` beyond 1, and a control ``1 GPU x B/2, accumulate 2``
(same global batch and rows, different micro-batching: how much the loss moves from summation order alone,
the yardstick for "the same loss curve within noise"; also the single-GPU run with the 2-GPU micro-batch).

Logging is every 10 steps, as in the GPU presets; the loss curve comes from each process's per-step losses, kept
on the device and read at the end (a log every step would add host syncs and collectives to the timing).
Timing: rank 0's wall clock over the steps after ``--warmup``, CUDA synchronised at the two ends of that window
(``--step-sync``: after every step, as in session 3; the rows each step trained are kept on the device too);
tokens/s counts every process's tokens (global batch x seq len per step). NCCL's NVLink multicast is off in the
children (``NCCL_NVLS_ENABLE=0``). Output in ``--out``: ``multi_gpu.md`` (table), ``multi_gpu.json`` (all
fields), ``multi_gpu.log`` (every child's output); written again after each launch, so a failed or timed-out
launch still leaves the earlier rows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

from benchmarks import gpu_train

ACCELERATE_CONFIGS = {name: Path(__file__).resolve().parents[1] / "labkit" / "accelerate" / f"{name}.yaml"
                      for name in ("ddp", "fsdp")}   # labkit's documented launch configs
CASES = {"transformers": "labkit-hf-bf16",    # transformers + PEFT, bf16 LoRA (fp32 on CPU)
         "unsloth": "labkit-unsloth-bf16"}    # Unsloth, bf16 LoRA (CUDA only)
SIGNATURE_TOKENS = 4      # a row is identified by its first tokens (random rows: collisions are negligible)


# ------------------------------------------------------------------ one process of a launch

def child_args(args) -> Namespace:
    """The fields ``gpu_train.bench_overrides`` / ``build_model`` read, for this configuration."""
    shape = "tiny" if args.tiny else "1b"
    return Namespace(model_dir=str(args.model_dir), device=args.device, seq_len=args.seq_len, rank=args.rank,
                     batch_size=args.per_device_batch, warmup=args.warmup, steps=args.steps, tiny=args.tiny,
                     shape=shape, tokenizer=str(args.tokenizer))


def train_child(args) -> dict:
    """One process of a launch: labkit's training; returns this process's timings, memory and rows seen."""
    import torch

    from labkit.env import import_unsloth_early

    import_unsloth_early(args.backend)   # before transformers, as labkit's CLI does
    from labkit import distributed
    from labkit.train.callbacks import read_log
    from labkit.config import load_config
    from labkit.train.loading import load_for_training
    from labkit.runs import Run
    from labkit.train.trainer import build_trainer

    distributed.setup(args.device)
    shaped = child_args(args)
    # Logging as the GPU presets do (every 10 steps): per-step losses are kept on the device instead (below).
    overrides = {**gpu_train.bench_overrides(shaped, gpu_train.CASES[CASES[args.backend]]),
                 "train.grad_accum": args.accumulate, "train.seed": args.seed}
    cfg = load_config("cpu-demo", overrides)
    run = Run.open("bench", cfg, root=args.out / args.label / "runs")
    loaded = load_for_training(cfg, verbose=distributed.is_main_process())
    load_memory = gpu_train.memory()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    global_batch = args.per_device_batch * args.accumulate * distributed.world_size()
    rows = gpu_train.random_rows(global_batch * (args.warmup + args.steps), args.seq_len, shaped_vocab(args))
    trainer = build_trainer(cfg, run, loaded, rows, [])
    seen, losses = _record_rows(trainer)
    stamps: list[float] = []
    trainer.add_callback(gpu_train._wall_clock_callback(stamps, gpu_train.sync_steps(shaped, args.step_sync)))
    trainer.train()
    result = {"rank": distributed.rank(), "world_size": distributed.world_size(), "stamps": stamps,
              "rows_seen": {step: [ids for part in parts for ids in part.tolist()] for step, parts in seen.items()},
              "step_loss": {step: float(sum(parts)) for step, parts in losses.items()},
              "train_memory": gpu_train.memory(), "load_memory": load_memory,
              "describe": loaded.describe(), "fused_head": trainer.use_fused_head,
              "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False))}
    if distributed.is_main_process():
        result["log"] = [r for r in read_log(run.path("logs", "train_log.jsonl")) if r.get("kind") == "train"]
    return result


def shaped_vocab(args) -> int:
    return (gpu_train.TINY if args.tiny else gpu_train.LLAMA_3_2_1B)["vocab_size"]


def _record_rows(trainer) -> tuple[dict, dict]:
    """Wrap the trainer's training_step to note which rows each optimizer step trains (by their first tokens)
    and its loss: both kept on the device until the end (reading them every step would make the host wait for
    the GPU every step, which the timing must not include). Summed over a step's
    micro-batches and averaged over processes they are the loss the Trainer would log for that step (each is
    the micro-batch's share of the step's token-mean loss, scaled by the number of processes)."""
    seen: dict[int, list] = {}   # step -> first tokens of its micro-batches (device tensors)
    losses: dict[int, list] = {}
    step_fn = trainer.training_step

    def training_step(model, inputs, num_items_in_batch=None):
        step = trainer.state.global_step + 1
        seen.setdefault(step, []).append(inputs["input_ids"][:, :SIGNATURE_TOKENS].detach().clone())
        loss = step_fn(model, inputs, num_items_in_batch)
        losses.setdefault(step, []).append(loss.detach())
        return loss

    trainer.training_step = training_step
    return seen, losses


# ------------------------------------------------------------------ the driver

def configurations(args) -> list[dict]:
    """(label, global batch, processes, per-device batch, accumulation) for every launch, in order: per global
    batch B, 1 GPU x B, then N GPUs x B/N, then the control 1 GPU x B/2 accumulated twice (the same micro-batch
    as 2 GPUs: the single-GPU way to reach B when B rows do not fit at once)."""
    out = []
    for batch in args.global_batch:
        same = {"global_batch": batch, "accumulate": 1}
        out.append({"label": f"1x{batch}", "processes": 1, "per_device_batch": batch, **same, "base": True})
        for n in args.gpus:
            if n == 1:
                continue
            if batch % n:
                raise ValueError(f"--global-batch {batch} is not divisible by {n} processes")
            out.append({"label": f"{n}x{batch // n}", "processes": n, "per_device_batch": batch // n, **same})
        if args.control and batch % 2 == 0:
            out.append({"label": f"1x{batch // 2}acc2", "processes": 1, "per_device_batch": batch // 2,
                        "global_batch": batch, "accumulate": 2, "control": True})
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(device: str) -> dict[str, str]:
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    return env


def run_command(command: list[str], timeout: float, log, env: dict) -> tuple[int | None, str]:
    """Run in its own process group (accelerate starts one child per rank) and kill the whole group on timeout."""
    log.write(f"\n===== {' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        log.write(output or "")
        return None, output or ""
    log.write(output)
    log.flush()
    return process.returncode, output


def build(args, log) -> dict:
    command = [sys.executable, "-m", "benchmarks.multi_gpu", "--child", "build", *_flags(args)]
    code, output = run_command(command, args.budget_s, log, child_env(args.device))
    if code != 0:
        raise RuntimeError(f"building the random model failed ({'timed out' if code is None else code}); "
                           f"see {args.out / 'multi_gpu.log'}: {output.strip()[-400:]}")
    return json.loads(output.strip().splitlines()[-1])


def launch(args, config: dict, timeout: float, log) -> dict:
    folder = args.out / config["label"]
    for old in folder.glob("rank*.json"):
        old.unlink()
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ACCELERATE_CONFIGS[args.accelerate_config]),
               "--num_processes", str(config["processes"]), "--main_process_port", str(_free_port()),
               "-m", "benchmarks.multi_gpu", "--child", "train", "--label", config["label"],
               "--per-device-batch", str(config["per_device_batch"]), "--accumulate", str(config["accumulate"]),
               *_flags(args)]
    started = time.time()
    code, output = run_command(command, timeout, log, child_env(args.device))
    ranks = [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))]
    if code != 0 or len(ranks) != config["processes"]:
        why = "timed out" if code is None else f"exit {code}"
        return {**config, "error": f"{why} after {time.time() - started:.0f} s: {_first_error(output)[:300]}"}
    return summarise(args, config, ranks, time.time() - started)


def _first_error(output: str) -> str:
    """The first line that names an exception (the ranks' tracebacks repeat it), else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line or "Exception:" in line]
    return (errors or lines or ["(no output)"])[0]


def summarise(args, config: dict, ranks: list[dict], seconds: float) -> dict:
    main = next(r for r in ranks if r["rank"] == 0)
    stamps = main["stamps"]
    if len(stamps) <= args.warmup:
        return {**config, "error": f"only {len(stamps)} steps ran (warm-up {args.warmup})"}
    timed = len(stamps) - args.warmup
    window = stamps[-1] - stamps[args.warmup - 1] if args.warmup else stamps[-1] - stamps[0]
    tokens_per_step = config["global_batch"] * args.seq_len
    rows: dict[str, list] = {}
    for r in ranks:
        for step, ids in r["rows_seen"].items():
            rows.setdefault(int(step), []).extend(ids)   # JSON made the step numbers strings
    logged = main["log"]
    timed_log = [r for i, r in enumerate(logged) if r["step"] - gpu_train._window(logged, i) >= args.warmup]
    steps = sorted(main["step_loss"], key=int)
    return {**config, "launch_seconds": seconds, "timed_steps": timed, "s_per_step": window / timed,
            "tokens_per_s": tokens_per_step * timed / window,
            "labkit_logged_tokens_per_s": (sum(r["tokens"] for r in timed_log)
                                           / sum(r["step_seconds"] for r in timed_log)) if timed_log else None,
            "loss": {int(s): sum(r["step_loss"][s] for r in ranks) / len(ranks) for s in steps},
            "logged_loss": {r["step"]: r["loss"] for r in logged},
            "rows_per_step": {step: sorted(map(tuple, ids)) for step, ids in rows.items()},
            "peak_allocated_gib": [r["train_memory"].get("max_allocated_gib") for r in sorted(ranks, key=_rank)],
            "describe": main["describe"], "fused_head": main["fused_head"],
            "gradient_checkpointing": main["gradient_checkpointing"]}


def _rank(result: dict) -> int:
    return result["rank"]


def compare(base: dict, other: dict) -> dict:
    """Speed-up, largest per-step loss difference, and whether every step trained the same rows."""
    if not base or any(key in run for run in (base, other) for key in ("error", "skipped")):
        return {}
    steps = sorted(set(base["loss"]) & set(other["loss"]), key=int)
    diffs = [abs(other["loss"][s] - base["loss"][s]) for s in steps]
    # Every step must have been seen whole (a recording that missed rows must not pass as "the same").
    same_rows = all(len(base["rows_per_step"].get(s, [])) == len(other["rows_per_step"].get(s, [])) > 0
                    for s in steps) and all(sorted(map(tuple, base["rows_per_step"].get(s, []))) ==
                    sorted(map(tuple, other["rows_per_step"].get(s, []))) for s in steps)
    return {"speedup": other["tokens_per_s"] / base["tokens_per_s"], "max_abs_loss_diff": max(diffs, default=None),
            "max_rel_loss_diff": max((d / abs(base["loss"][s]) for d, s in zip(diffs, steps)), default=None),
            "compared_steps": len(steps), "same_rows_every_step": same_rows}


def base_of(results: list[dict], result: dict) -> dict:
    """The 1 GPU x B run of ``result``'s global batch B (what the others are compared with)."""
    return next((r for r in results if r.get("base") and r["global_batch"] == result["global_batch"]), {})


def table(args, model: dict, results: list[dict]) -> str:
    lines = [f"Model: {model['params_total'] / 1e9:.3f} B params ({'tiny' if args.tiny else 'Llama-3.2-1B'} shape), "
             f"GPU: {model.get('gpu') or 'none (CPU processes over gloo)'}; labkit on {args.backend}; "
             f"accelerate config labkit/accelerate/{args.accelerate_config}.yaml; "
             f"{args.seq_len} tokens a row, LoRA r={args.rank} on 7 projections, gradient checkpointing, AdamW, seed "
             f"{args.seed}, logging every {gpu_train.LABKIT_LOGGING_STEPS} steps; {args.steps} timed steps after "
             f"{args.warmup} warm-up; NCCL_NVLS_ENABLE=0. Loss differences are against the 1 GPU run of the same "
             "global batch (per step, averaged over processes).", "",
             "| config | global batch | processes x batch (x accum) | tokens/s (all GPUs) | speed-up vs 1 GPU x B "
             "| vs the control | s/step | peak alloc GiB per rank | labkit-logged tokens/s | max abs loss diff | "
             "max rel diff | same rows each step | notes |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |"]
    for r in results:
        shape = f"{r['processes']} x {r['per_device_batch']}" + (f" x {r['accumulate']}" if r["accumulate"] > 1 else "")
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['label']} | {r['global_batch']} | {shape} | - | - | - | - | - | - | - | - | - | "
                         f"{r.get('error') or r['skipped']} |")
            continue
        base = base_of(results, r)
        c = compare(base, r) if r is not base else {}
        control = next((x for x in results if x.get("control") and x["global_batch"] == r["global_batch"]
                        and "tokens_per_s" in x), None)
        versus = r["tokens_per_s"] / control["tokens_per_s"] if control and r["processes"] > 1 else None
        memory = ", ".join("-" if m is None else f"{m:.1f}" for m in r["peak_allocated_gib"])
        note = "control: 1 GPU, same rows, micro-batches of half size" if r.get("control") else r["describe"]
        lines.append(
            f"| {r['label']} | {r['global_batch']} | {shape} | {r['tokens_per_s']:,.0f} | "
            f"{_fmt(c.get('speedup'), '.2f', 'x')} | {_fmt(versus, '.2f', 'x')} | "
            f"{r['s_per_step']:.3f} | {memory} | {_fmt(r.get('labkit_logged_tokens_per_s'), ',.0f')} | "
            f"{_fmt(c.get('max_abs_loss_diff'), '.2e')} | {_fmt(c.get('max_rel_loss_diff'), '.2e')} | "
            f"{'-' if not c else ('yes' if c['same_rows_every_step'] else 'NO')} | {note} |")
    return "\n".join(lines) + "\n"


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _flags(args) -> list[str]:
    flags = ["--out", str(args.out), "--model-dir", str(args.model_dir), "--tokenizer", str(args.tokenizer),
             "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
             "--seq-len", str(args.seq_len), "--rank", str(args.rank), "--seed", str(args.seed),
             "--backend", args.backend]
    return flags + (["--tiny"] if args.tiny else []) + (["--step-sync"] if args.step_sync else [])


def write(args, model: dict, results: list[dict]) -> None:
    from labkit.env import versions

    text = table(args, model, results)
    (args.out / "multi_gpu.md").write_text(text, encoding="utf-8")
    comparisons = {r["label"]: compare(base_of(results, r), r) for r in results if not r.get("base")}
    payload = {"model": model, "args": {k: str(v) for k, v in vars(args).items()}, "versions": versions(),
               "results": results, "comparisons": comparisons}
    (args.out / "multi_gpu.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def drive(args) -> list[dict]:
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: list[dict] = []
    with open(args.out / "multi_gpu.log", "a", encoding="utf-8") as log:
        model = build(args, log)
        print(f"model built in {time.time() - started:.0f} s", flush=True)
        for config in configurations(args):
            left = args.budget_s - (time.time() - started)
            if left < args.min_launch_s:
                results.append({**config, "skipped": f"not run: {left:.0f} s of the time budget left"})
            else:
                results.append(launch(args, config, min(left, args.launch_timeout_s), log))
            shown = {k: v for k, v in results[-1].items() if k not in ("loss", "rows_per_step")}
            print(f"{config['label']}: {json.dumps(shown, default=str)}", flush=True)
            write(args, model, results)
    return results


# ------------------------------------------------------------------ entry point

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multi_gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the table (md + json) and the logs")
    parser.add_argument("--tokenizer", type=Path, required=True, help="a folder with a tokenizer (token ids are random)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--model-dir", type=Path, help="where the random model is saved (default: <out>/model)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer toy shape (for a CPU smoke run)")
    parser.add_argument("--gpus", default="1,2", help="process counts to compare with 1 (comma-separated)")
    parser.add_argument("--global-batch", default="8", help="rows per optimizer step over all processes "
                        "(comma-separated for several, e.g. 8,16)")
    parser.add_argument("--backend", default="transformers", choices=sorted(CASES), help="labkit's model.backend")
    parser.add_argument("--accelerate-config", default="ddp", choices=sorted(ACCELERATE_CONFIGS),
                        help="labkit/accelerate/<name>.yaml for every launch (fsdp: transformers backend only; on "
                             "CPU processes accelerate runs it as plain DDP)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip the 1-GPU run with half-size micro-batches accumulated twice")
    parser.add_argument("--budget-s", type=float, default=500, help="start no launch after this many seconds")
    parser.add_argument("--launch-timeout-s", type=float, default=200)
    parser.add_argument("--min-launch-s", type=float, default=60, help="skip a launch when less time is left")
    parser.add_argument("--step-sync", action="store_true",
                        help="wait for the GPU after every step (the session-3 timing; default: at the window's ends)")
    parser.add_argument("--child", choices=("build", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--per-device-batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--accumulate", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.accelerate_config == "fsdp" and args.backend != "transformers":
        parser.error("--accelerate-config fsdp: labkit/accelerate/fsdp.yaml is for --backend transformers "
                     "(Unsloth's models are not sharded); use ddp with unsloth")
    args.gpus = [int(n) for n in args.gpus.split(",")]
    args.global_batch = [int(n) for n in args.global_batch.split(",")]
    args.model_dir = args.model_dir or args.out / "model"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child == "build":
        print(json.dumps(gpu_train.build_model(child_args(Namespace(**{**vars(args), "per_device_batch": 1})))))
        return
    if args.child == "train":
        result = train_child(args)
        folder = args.out / args.label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{result['rank']}.json").write_text(json.dumps(result, default=str), encoding="utf-8")
        return
    results = drive(args)
    print((args.out / "multi_gpu.md").read_text(encoding="utf-8"))
    if not results or any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
