"""The QLoRA gap, measured: how far the 16-bit base + a QLoRA-trained adapter is from the 4-bit model that was
trained, beside the merge check (merged model vs 16-bit base + adapter). The numbers set
``labkit.export.parity.PPL_TOLERANCE["qlora_gap"]`` (see ``labkit/export/qlora.py``).

    python -m benchmarks.qlora_gap --out DIR [--preset colab-llama3.2-3b-qlora] [--set KEY=VALUE ...] [--steps 60]

Runs labkit's own stages on a GPU: prepare, QLoRA training (``model.load_in_4bit=true``), then the export's merge
and checks without GGUF files (``export_model(..., formats=[])``, so the GGUF converter is not needed). Writes
``qlora_gap.json`` and ``qlora_gap.md`` into ``--out`` (the run folder goes to ``--out/runs``). Needs CUDA and
bitsandbytes. A random-initialised model of a real shape is no use here: its perplexity says nothing about how
quantisation changes a trained model, so use real weights (offline on the device: ``model.name=smollm2-135m-instruct``,
the stand-in of the GPU recipe in ``../shared/gpu/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUN = "qlora-gap"


def train(args, overrides: list[str]) -> None:
    """``labkit prepare`` and ``labkit train`` as a user runs them, in their own process: Unsloth patches
    transformers and PEFT on import, and the export below must load models the way ``labkit export`` does."""
    sets = [x for o in overrides for x in ("--set", o)]
    for stage in ("prepare", "train"):
        subprocess.run([sys.executable, "-m", "labkit.cli", stage, "--preset", args.preset, "--run", RUN, *sets],
                       check=True, env={**os.environ, "LABKIT_RUNS": str(args.out / "runs")})


def measure(args) -> dict:
    overrides = [*args.set, "model.load_in_4bit=true", f"train.max_steps={args.steps}", "train.save_steps=0",
                 "train.eval_steps=0"]
    started = time.time()
    train(args, overrides)
    from labkit.export import export_model
    from labkit.export.stage import _held_out
    from labkit.models import resolve
    from labkit.runs import Run

    run = Run.existing(RUN, root=args.out / "runs")
    cfg, summary = run.config(), run.load("train_summary")
    report = export_model(resolve(cfg.model.name), run.path("adapter"), run.path("export"), formats=[],
                          held_out=_held_out(run), qlora_dtype=cfg.model.dtype)
    keep = ("perplexity", "reference_perplexity", "perplexity_rel_diff", "max_abs_logit_diff", "probes",
            "probes_identical", "greedy_mismatches", "near_tie_flips", "held_out_tokens")
    return {"preset": args.preset, "overrides": overrides, "model": cfg.model.name,
            "training": {k: summary.get(k) for k in ("backend", "dtype", "steps", "final_train_loss")},
            "merge_check": {k: report["merge"]["parity"].get(k) for k in keep},
            "qlora_gap": report["merge"]["qlora_gap"], "warnings": report["warnings"],
            "seconds": round(time.time() - started, 1)}


def markdown(result: dict) -> str:
    gap, merge, t = result["qlora_gap"], result["merge_check"], result["training"]
    if "skipped" in gap:
        return f"QLoRA gap {gap['skipped']}\n"
    return (f"{result['model']} ({result['preset']}, {' '.join(result['overrides'])}), trained with {t['backend']} in "
            f"{t['dtype']} for {t['steps']} steps.\n\n"
            "| comparison | reference ppl | candidate ppl | relative | probes identical | max logit diff |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n"
            f"| merged vs 16-bit base + adapter (merge check) | {merge['reference_perplexity']} | "
            f"{merge['perplexity']} | {merge['perplexity_rel_diff']:.3%} | {merge['probes_identical']}/"
            f"{merge['probes']} | {merge['max_abs_logit_diff']} |\n"
            f"| 16-bit base + adapter vs 4-bit trained (QLoRA gap) | {gap['reference_perplexity']} | "
            f"{gap['perplexity']} | {gap['perplexity_rel_diff']:.3%} | {gap['probes_identical']}/{gap['probes']} | "
            f"{gap['max_abs_logit_diff']} |\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.qlora_gap", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="colab-llama3.2-3b-qlora")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting (repeatable)")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")
    result = measure(args)
    (args.out / "qlora_gap.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (args.out / "qlora_gap.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
