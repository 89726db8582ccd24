"""Training speed on the CPU: labkit's trainer vs a hand-written transformers + PEFT loop, and packing vs padding.

    python -m benchmarks.train_speed --run demo [--model smollm2-135m-instruct] [--steps 8] [--warmup 2]
    python -m benchmarks.train_speed --run demo --head --repeat 2    # LM head: trained positions vs full

``--run`` names a run with prepared data (notebook 01 / ``labkit prepare``); its training rows are used by
every case. Each case runs in its own process (so peak RSS is per case) with the same model, rows, LoRA and
optimizer settings; the first ``--warmup`` steps are not timed. Cases:

- ``plain loop``: AutoModelForCausalLM + peft.get_peft_model + AdamW + a padded DataLoader, written by hand;
- ``labkit``: ``run_training`` (TRL SFTTrainer + labkit's callbacks), padded batches;
- ``labkit packed``: the same with ``data.packing=true`` (TRL's BFD packing, padding-free rows): the cpu-demo
  preset's settings;
- ``labkit packed full-head``: the same, with the LM head over every position (labkit before it computed the
  head only at the trained positions, labkit.train.head). ``--head`` runs this pair alone.

``--head-ab`` compares the two LM-head variants inside one process instead, alternating on the same packed
micro-batches (forward + backward of the Trainer's training_step): the way to see the difference on a machine
whose load changes from minute to minute.

``--repeat N`` runs the chosen cases N times, interleaved (A B A B), and prints a table per round: on a machine
shared with other jobs the spread between rounds is the noise.

Throughput is per timed step: tokens/s counts non-padding tokens, trained tokens/s the assistant tokens that
carry the loss (what packing is meant to raise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("plain loop", "labkit", "labkit packed", "labkit packed full-head")
HEAD_CASES = ("labkit packed full-head", "labkit packed")


def bench_config(model: str, steps: int, batch_size: int, max_seq_length: int, packing: bool) -> dict:
    """Overrides of the cpu-demo preset shared by every case (no evaluation or checkpoints while timing)."""
    return {"model.name": model, "train.max_steps": steps, "train.batch_size": batch_size,
            "data.max_seq_length": max_seq_length, "data.packing": packing, "train.eval_steps": 0,
            "train.save_steps": 0, "train.logging_steps": 1, "train.warmup_ratio": 0.0}


# ------------------------------------------------------------------ the cases (each runs in a child process)

def _load_rows(run_dir: Path, tokenizer, max_length: int) -> list[dict]:
    from labkit.runs import Run
    from labkit.train.trainer import load_split, tokenize_rows

    rows, _ = tokenize_rows(load_split(Run(run_dir.name, run_dir), "train"), tokenizer, max_length)
    return rows


def case_labkit(args, packing: bool, full_head: bool = False) -> dict:
    from labkit.train import trainer
    from labkit.train.callbacks import peak_rss_mb, read_log
    from labkit.config import load_config
    from labkit.runs import Run
    from labkit.train.trainer import run_training

    trainer.HEAD_AT_TRAINED_POSITIONS = not full_head  # this child process only

    source = Path(args.run_dir)
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    shutil.copytree(source / "data", work / "run" / "data")
    (work / "run" / "data" / "validation.jsonl").write_text("")  # no validation passes: only training is timed
    overrides = bench_config(args.model, args.steps, args.batch_size, args.max_seq_length, packing)
    overrides["data.sources"] = str(work / "run" / "data" / "train.jsonl")
    cfg = load_config("cpu-demo", overrides)
    run = Run.open("run", cfg, root=work)
    run_training(cfg, run)
    timed = [r for r in read_log(run.path("logs", "train_log.jsonl"))
             if r.get("kind") == "train" and r["step"] > args.warmup]
    shutil.rmtree(work, ignore_errors=True)
    return _totals([(r["step_seconds"], r["tokens"], r["trained_tokens"], r["step_cpu_seconds"]) for r in timed],
                   peak_rss_mb())


def case_plain(args) -> dict:
    """The reference: the same model, LoRA, optimizer and rows, trained by a loop written by hand."""
    import peft
    import torch
    from transformers import AutoModelForCausalLM, get_scheduler

    from labkit.train.callbacks import peak_rss_mb
    from labkit.config import load_config
    from labkit.train.loading import load_training_tokenizer
    from labkit.train.lora import peft_config
    from labkit.models import resolve

    overrides = bench_config(args.model, args.steps, args.batch_size, args.max_seq_length, False)
    overrides["data.sources"] = str(Path(args.run_dir) / "data" / "train.jsonl")
    cfg = load_config("cpu-demo", overrides)
    torch.manual_seed(cfg.train.seed)
    tokenizer = load_training_tokenizer(cfg)
    rows = _load_rows(Path(args.run_dir), tokenizer, cfg.data.max_seq_length)
    model = AutoModelForCausalLM.from_pretrained(resolve(cfg.model.name), dtype=torch.float32)
    model.config.use_cache = False
    model = peft.get_peft_model(model, peft_config(cfg.lora, model)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = get_scheduler(cfg.train.lr_scheduler, optimizer, num_warmup_steps=0, num_training_steps=args.steps)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(cfg.train.seed)).tolist()
    steps = []
    for step in range(args.steps):
        picked = [rows[i] for i in order[step * args.batch_size:(step + 1) * args.batch_size]]
        batch = _pad(picked, tokenizer.pad_token_id)
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if step >= args.warmup:
            steps.append((seconds, int(batch["attention_mask"].sum()), int((batch["labels"][:, 1:] != -100).sum()),
                          cpu))
    return _totals(steps, peak_rss_mb())


def _pad(rows: list[dict], pad_id: int) -> dict:
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.where(torch.tensor(r["assistant_masks"]) == 1, ids[i, :n], -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _totals(steps: list[tuple[float, int, int, float]], peak_rss: float) -> dict:
    """Per-step sums. ``cpu_s_per_step`` is the process's CPU time: on a machine shared with other jobs it
    measures the work of a step, while the wall time also counts waiting for a core."""
    seconds = sum(s[0] for s in steps)
    tokens = sum(s[1] for s in steps)
    trained = sum(s[2] for s in steps)
    cpu = sum(s[3] for s in steps)
    return {"timed_steps": len(steps), "s_per_step": seconds / len(steps), "cpu_s_per_step": cpu / len(steps),
            "tokens_per_s": tokens / seconds, "trained_tokens_per_s": trained / seconds,
            "tokens_per_cpu_s": tokens / cpu, "trained_tokens_per_cpu_s": trained / cpu,
            "tokens_per_step": tokens / len(steps), "peak_rss_mb": peak_rss}


def head_ab(args) -> list[dict]:
    """Both LM-head variants in ONE process on the same packed micro-batches, alternated batch by batch: on a
    shared machine the load then hits both alike. Times the Trainer's training_step (forward + backward; the
    LoRA optimizer step is the same for both and left out). Returns one record per variant and round."""
    from labkit.config import load_config
    from labkit.runs import Run
    from labkit.train.loading import load_for_training
    from labkit.train.trainer import build_trainer, load_split, tokenize_rows

    run_dir = Path(args.run_dir)
    overrides = bench_config(args.model, args.steps, args.batch_size, args.max_seq_length, True)
    overrides["data.sources"] = str(run_dir / "data" / "train.jsonl")
    cfg = load_config("cpu-demo", overrides)
    loaded = load_for_training(cfg, verbose=False)
    rows, _ = tokenize_rows(load_split(Run(run_dir.name, run_dir), "train"), loaded.tokenizer, args.max_seq_length)
    trainer = build_trainer(cfg, Run.open("head-ab", cfg, root=Path(tempfile.mkdtemp())), loaded, rows, [])
    loader = iter(trainer.get_train_dataloader())
    batches = [next(loader) for _ in range(args.steps + 1)]
    model = trainer.model.train()

    def step(batch, restricted: bool) -> tuple[float, float]:
        trainer.head_at_trained_positions = restricted
        items = (batch["labels"][:, 1:] != -100).sum()
        start, cpu = time.perf_counter(), time.process_time()
        trainer.training_step(model, dict(batch), items)
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start, time.process_time() - cpu

    step(batches[0], True), step(batches[0], False)   # warm-up, untimed
    records = []
    for round_ in range(1, args.repeat + 1):
        sums = {False: [0.0, 0.0], True: [0.0, 0.0]}
        for batch in batches[1:]:
            for restricted in ((False, True) if round_ % 2 else (True, False)):
                wall, cpu = step(batch, restricted)
                sums[restricted][0] += wall
                sums[restricted][1] += cpu
        trained = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches[1:])
        tokens = sum(int(b["input_ids"].numel()) for b in batches[1:])
        for restricted, (wall, cpu) in sums.items():
            records.append({"round": round_, "head": "trained positions" if restricted else "full",
                            "micro_batches": len(batches) - 1, "tokens": tokens, "trained_tokens": trained,
                            "s": wall, "cpu_s": cpu, "trained_tokens_per_s": trained / wall,
                            "trained_tokens_per_cpu_s": trained / cpu, "load": os.getloadavg()[0]})
    return records


def head_ab_table(records: list[dict]) -> str:
    lines = ["| round | LM head | micro-batches | tokens | trained tokens | s | CPU s | trained tokens/s "
             "| trained tokens/CPU-s | load avg |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in records:
        lines.append(f"| {r['round']} | {r['head']} | {r['micro_batches']} | {r['tokens']} | {r['trained_tokens']} "
                     f"| {r['s']:.1f} | {r['cpu_s']:.1f} | {r['trained_tokens_per_s']:.0f} "
                     f"| {r['trained_tokens_per_cpu_s']:.0f} | {r['load']:.1f} |")
    for round_ in sorted({r["round"] for r in records}):
        full, restricted = (next(r for r in records if r["round"] == round_ and r["head"] == h)
                            for h in ("full", "trained positions"))
        lines.append(f"round {round_}: trained positions / full head: "
                     f"{restricted['trained_tokens_per_s'] / full['trained_tokens_per_s']:.2f}x per wall second, "
                     f"{restricted['trained_tokens_per_cpu_s'] / full['trained_tokens_per_cpu_s']:.2f}x per CPU "
                     "second (target >= 1.25x)")
    return "\n".join(lines)


# ------------------------------------------------------------------ driver

def run_case(name: str, args) -> dict:
    """Run one case in a fresh Python process and return its JSON result."""
    command = [sys.executable, "-m", "benchmarks.train_speed", "--case", name, "--run-dir", str(args.run_dir),
               "--model", args.model, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch-size", str(args.batch_size), "--max-seq-length", str(args.max_seq_length)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"case {name!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict]) -> str:
    plain, padded, packed, full_head = (results.get(c) for c in CASES)
    lines = ["| case | s/step | CPU s/step | tokens/s | trained tokens/s | tokens/CPU-s | trained tokens/CPU-s "
             "| tokens/step | peak RSS MiB |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['s_per_step']:.2f} | {r['cpu_s_per_step']:.2f} | {r['tokens_per_s']:.0f} "
                     f"| {r['trained_tokens_per_s']:.0f} | {r['tokens_per_cpu_s']:.0f} "
                     f"| {r['trained_tokens_per_cpu_s']:.0f} | {r['tokens_per_step']:.0f} | {r['peak_rss_mb']:.0f} |")
    for label, a, b, key, target in (("labkit / plain loop, tokens", padded, plain, "tokens", 0.95),
                                     ("packed / padded, trained tokens", packed, padded, "trained_tokens", 1.5),
                                     ("head at trained positions / full head, trained tokens", packed, full_head,
                                      "trained_tokens", 1.25)):
        if a and b:
            lines.append(f"{label}: {a[key + '_per_s'] / b[key + '_per_s']:.2f}x per wall second, "
                         f"{a[key + '_per_cpu_s'] / b[key + '_per_cpu_s']:.2f}x per CPU second (target >= {target}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="a run with prepared data (notebook 01)")
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--head", action="store_true", help="only the LM-head pair: " + ", ".join(HEAD_CASES))
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the chosen cases, interleaved")
    parser.add_argument("--head-ab", action="store_true",
                        help="the LM-head pair in one process, alternated per micro-batch (--steps micro-batches)")
    args = parser.parse_args(argv)
    if args.case:
        result = (case_plain(args) if args.case == "plain loop" else
                  case_labkit(args, args.case.startswith("labkit packed"), args.case.endswith("full-head")))
        print(json.dumps(result))
        return
    from labkit.runs import Run

    args.run_dir = Run.existing(args.run).dir if args.run else None
    if args.run_dir is None:
        parser.error("--run is required: a run with prepared data (notebook 01 or `labkit prepare --run NAME`)")
    if args.head_ab:
        print(head_ab_table(head_ab(args)))
        return
    names = HEAD_CASES if args.head else [name.strip() for name in args.cases.split(",")]
    for round_ in range(1, args.repeat + 1):
        results = {}
        for name in names:
            results[name] = run_case(name, args)
            print(f"round {round_}, {name}: {json.dumps(results[name])}", flush=True)
        print(f"round {round_} of {args.repeat} (load average {os.getloadavg()[0]:.1f}):")
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
