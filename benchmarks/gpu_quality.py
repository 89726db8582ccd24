"""A short quality check of labkit's GPU path on the real SmolLM2-135M-Instruct: the product's own stages
(prepare -> ``run_training`` -> base vs fine-tuned replies through ``loadrun`` / ``compare``) on the project's
data, with the model and device settings a GPU user would pick. It passes when the validation loss per trained
token goes down; the replies are printed for a reader to judge whether they are coherent.

    python -m benchmarks.gpu_quality --out DIR [--backend auto|unsloth|transformers] [--steps 60]

Writes ``gpu_quality.json`` and ``gpu_quality.md`` into ``--out`` (the run folder goes to ``--out/runs``).
Speed is not the point here (see :mod:`benchmarks.gpu_train`); a random model cannot show that training
learns, a real one can.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def overrides(args) -> dict:
    return {"model.device": args.device, "model.dtype": "auto", "model.backend": args.backend,
            "model.load_in_4bit": args.four_bit, "train.max_steps": args.steps,
            "train.eval_steps": max(args.steps // 3, 1), "train.save_steps": max(args.steps // 3, 1),
            "train.logging_steps": 10, "train.lr": args.lr, "data.limit": args.limit}


def check(args) -> dict:
    from labkit.env import import_unsloth_early

    import_unsloth_early(args.backend)  # as labkit.notebook.start and the CLI do
    from labkit.infer.compare import example_conversations, side_by_side
    from labkit.config import load_config
    from labkit.data.prepare import run_prepare
    from labkit.infer.loadrun import load_models
    from labkit.runs import Run
    from labkit.train.trainer import run_training

    cfg = load_config("cpu-demo", overrides(args))
    run = Run.open(f"gpu-quality-{args.backend}{'-4bit' if args.four_bit else ''}", cfg,
                   root=args.out / "runs")
    started = time.time()
    run_prepare(cfg, run)
    summary = run_training(cfg, run)
    frame = side_by_side(load_models(cfg, run), example_conversations(run, per_category=2))
    return {"summary": {k: summary.get(k) for k in ("backend", "dtype", "device", "load_in_4bit", "steps",
                                                     "base_eval_loss", "final_eval_loss", "final_train_loss",
                                                     "tokens_per_s", "peak_gpu_mb", "train_seconds")},
            "loss_went_down": summary["final_eval_loss"] < summary["base_eval_loss"],
            "replies": frame.to_dict(orient="records"), "seconds": round(time.time() - started, 1),
            "overrides": overrides(args)}


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [f"Backend {s['backend']}, {s['dtype']}, {s['device']}, 4-bit {s['load_in_4bit']}, {s['steps']} steps; "
             f"validation loss per trained token {s['base_eval_loss']:.3f} -> {s['final_eval_loss']:.3f} "
             f"({'down' if result['loss_went_down'] else 'NOT down'}); {s['tokens_per_s']:.0f} tokens/s; "
             f"peak GPU {s['peak_gpu_mb'] or 0:.0f} MiB; whole check {result['seconds']} s", "",
             "| prompt | reference | base | tuned |", "| --- | --- | --- | --- |"]
    for row in result["replies"]:
        cells = [str(row.get(k, "")).replace("|", "\\|").replace("\n", " ")[:200]
                 for k in ("prompt", "reference", "base", "tuned")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="auto", choices=("auto", "unsloth", "transformers"))
    parser.add_argument("--four-bit", action="store_true", help="QLoRA (bitsandbytes nf4; CUDA only)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--limit", type=int, default=400, help="data.limit (rows per source)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = check(args)
    name = f"gpu_quality_{args.backend}{'_4bit' if args.four_bit else ''}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (args.out / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
