"""Predicted (labkit.train.planner) against measured, for every configuration measured in reports/.

GPU rows: the single-H200 tables of reports/gpu/ (JSON next to each table): Llama-3.2-1B and 3B shapes, batch
4 x 2048, LoRA r=16 on the 7 projections, gradient checkpointing, AdamW. Peak memory is the training steps'
``torch.cuda.max_memory_allocated`` (the planner's ``training_step_gib``), from the latest session that ran the
case; tokens/s is the median over the sessions that ran labkit's current training code (4 to 7), or the only
session that ran the case. The planner's tokens/s constants were calibrated on the 1B rows: the 3B rows check
them. Rows without labkit (plain transformers + PEFT loops) check the full-logits loss (the path labkit takes on
the CPU); the planner has no speed constant for them.
CPU rows: the reference runs' summaries (2 cores; peak RSS and tokens/s); cpu-demo calibrated the CPU constants.
An experiment runs its cells in one process (labkit.experiment), and peak RSS is that process's high-water mark so
far: the data-size and size-vs-tuning rows after a grid's first cell may carry an earlier cell's peak (Gemma's
9 GiB is above anything before it, so it is its own).

    python benchmarks/plan_accuracy.py [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from labkit.config import load_config
from labkit.train.planner.predict import predict, setup_for
from labkit.train.planner.data import run_data
from labkit.train.planner.memory import training_parts
from labkit.train.planner.specs import GIB, get_gpu, model_shape

REPO = Path(__file__).resolve().parents[1]
GPU_DIR = REPO / "reports" / "gpu"
# labkit's present training code (gpu_benchmark.md); planner/: other batch shapes and ranks, run for issue 23
CURRENT = ("session4", "session5", "session6", "session7", "planner")
MODELS = {"1b": "unsloth/Llama-3.2-1B-Instruct", "3b": "unsloth/Llama-3.2-3B-Instruct"}
CASES = {  # bench case -> (overrides, uses labkit's own loss)
    "labkit-unsloth-bf16": (["model.backend=unsloth"], True),
    "labkit-unsloth-qlora": (["model.backend=unsloth", "model.load_in_4bit=true"], True),
    "labkit-hf-bf16": (["model.backend=transformers"], True),
    "labkit-hf-qlora": (["model.backend=transformers", "model.load_in_4bit=true"], True),
    "bare-unsloth-bf16": (["model.backend=unsloth"], True),
    "plain-hf-bf16": (["model.backend=transformers"], False),
    "plain-hf-qlora": (["model.backend=transformers", "model.load_in_4bit=true"], False),
}
BENCH = ["data.packing=false", "train.grad_accum=1", "train.gradient_checkpointing=true", "train.optim=adamw_torch",
         "lora.dropout=0", "lora.target_modules=all-linear", "model.dtype=bfloat16"]
# CPU runs (2 cores): source, preset, overrides, peak RSS MiB, tokens/s (None: not a measurement of the code).
# Only runs of today's CPU path (LM head at trained positions, the Trainer's evaluation loss-only, 2026-12-05);
# the rows measured before (cpu-demo 3,737 MiB, data-size, size-vs-tuning with Gemma 3 270M) kept every logit.
CPU_RUNS = [
    # `labkit reference demo` (make reference's first step): the run reports/cpu-demo/ is written from. That hour the
    # machine ran at about a third of its usual speed (62 tokens/s; 238-292 in every other run), so no speed here.
    ("cpu-demo reference run, 2026-12-05 (train_summary.json; calibration)", "cpu-demo", [], 2393.3, None),
    # `labkit prepare --preset smoke --run smk && labkit train --preset smoke --run smk`, 2026-12-05 (not in reports/):
    # 4 steps of a 2-layer model, so its tokens/s is mostly fixed cost per step
    ("smoke run, 2026-12-05 (train_summary.json)", "smoke", [], 612.5, 131.0),
]


def gpu_measurements() -> dict[tuple, dict]:
    """(shape, batch, seq, rank, case) -> latest peak GiB with its file, and the tokens/s of every current-code run."""
    rows: dict[tuple, dict] = {}
    def session(path: Path) -> str:
        return path.parent.name if path.parent.name != "gpu" else "session4"

    for path in sorted(GPU_DIR.glob("**/gpu_train_*.json"), key=lambda p: (session(p), p.name)):  # oldest first
        report = json.loads(path.read_text())
        a = report["args"]
        for case, result in report["results"].items():
            case = case.split("#")[0]
            if case not in CASES or "train_memory" not in result:
                continue
            key = (a["shape"], int(a["batch_size"]), int(a["seq_len"]), int(a["rank"]), case)
            row = rows.setdefault(key, {"speeds": [], "old_speeds": []})
            row["peak"], row["file"] = result["train_memory"]["max_allocated_gib"], str(path.relative_to(REPO))
            row["speeds" if session(path) in CURRENT else "old_speeds"].append(result["tokens_per_s"])
    return rows


def predict_gpu(shape: str, batch: int, seq: int, rank: int, case: str) -> tuple[float, float | None]:
    overrides, own_loss = CASES[case]
    shape_settings = [f"model.name={MODELS[shape]}", f"train.batch_size={batch}", f"data.max_seq_length={seq}",
                      f"lora.r={rank}", f"lora.alpha={2 * rank}"]
    cfg = load_config("colab-llama3.2-1b", [*BENCH, *overrides, *shape_settings])
    result = predict(cfg, get_gpu("H200"))
    if own_loss:
        return result["memory"]["training_step_gib"], result["speed"]["tokens_per_s"]
    model, _ = model_shape(cfg.model.name)
    setup = dataclasses.replace(setup_for(cfg, "H200", get_gpu("H200"), run_data(cfg, None), model), loss="full")
    return sum(training_parts(model, setup).values()) / GIB, None


def error(predicted: float | None, measured: float | None) -> str:
    if predicted is None or not measured:
        return "-"
    return f"{predicted / measured - 1:+.1%}"


def table(markdown: bool) -> list[list[str]]:
    out = []
    for key, row in sorted(gpu_measurements().items()):
        shape, batch, seq, rank, case = key
        peak, tps = predict_gpu(*key)
        speeds = row["speeds"] or row["old_speeds"]
        measured_tps = statistics.median(speeds) if speeds else None
        out.append([f"{shape.upper()} {case}, {batch} x {seq}, r={rank} (H200)", f"{peak:.2f}", f"{row['peak']:.2f}", error(peak, row["peak"]),
                    f"{tps:,.0f}" if tps else "-", f"{measured_tps:,.0f}" if measured_tps else "-",
                    error(tps, measured_tps), row["file"]])
    for source, preset, overrides, rss_mib, measured_tps in CPU_RUNS:
        result = predict(load_config(preset, overrides), None)
        ram, tps = result["ram"]["peak_gib"], result["speed"]["tokens_per_s"]
        out.append([f"{result['model']['name']} {preset} {' '.join(overrides)} (2 CPU cores, RSS)".replace("  ", " "),
                    f"{ram:.2f}", f"{rss_mib / 1024:.2f}", error(ram, rss_mib / 1024), f"{tps:,.0f}",
                    f"{measured_tps:,.0f}" if measured_tps else "-", error(tps, measured_tps), source])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    header = ["configuration", "peak GiB predicted", "measured", "error", "tokens/s predicted", "measured", "error",
              "measured in"]
    rows = table(args.markdown)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("| --- " * len(header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()
