"""Benchmark: labkit.eval.mcscore against lm-evaluation-harness (HFLM) on the same multiple-choice file.

    python -m benchmarks.eval_parity --model-dir DIR --data FILE [--limit N]
    python -m benchmarks.eval_parity --model-dir DIR --all ../shared/data/evalsets [--limit N] [--out FILE.md]

``--all DIR`` runs every ``*.jsonl`` of DIR (the shared evalsets: ARC-Challenge, ARC-Easy, OpenBookQA, PIQA, SIQA)
and prints one table: acc and acc_norm of both, their difference (parity: within 0.5 points), and how many
items' predictions agree.

Runs lm-eval 0-shot on a task YAML generated into a temp dir (json dataset, ARC-style prompt), then
labkit's scorer on the same items, and prints accuracies, items/s, their ratio and item-by-item
agreement. Needs the ``lm-eval`` package (a benchmark-only dependency). Model loading is not timed.
Timings on a shared machine vary with its load; CPU seconds are printed beside wall time for that reason.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

TASK_NAME = "labkit_parity_mc"


def write_task_yaml(directory: Path, data_file: Path, items: list[dict]) -> Path:
    """ARC's task config (target_delimiter " ", doc_to_choice = the choice texts) over a local jsonl.
    Written as JSON, which is valid YAML and needs no escaping."""
    ends_with_cue = {item["query"].rstrip().endswith("Answer:") for item in items}
    if len(ends_with_cue) != 1:
        raise ValueError(f"{data_file}: some queries end with 'Answer:' and some do not; use one style per file.")
    config = {
        "task": TASK_NAME,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{query}}" if ends_with_cue.pop() else "{{query}}\nAnswer:",
        "doc_to_target": "{{gold}}",
        "doc_to_choice": "{{choices}}",
        "target_delimiter": " ",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    path = directory / f"{TASK_NAME}.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def _warm_up(model) -> None:
    import torch

    with torch.inference_mode():
        model(torch.tensor([[1, 2, 3, 4]], device=next(model.parameters()).device))


def run_harness(model_dir: str, data_file: Path, items: list[dict], limit: int | None, batch_size: int) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=batch_size)
    _warm_up(lm.model)
    loglikelihood_seconds = []
    original = lm.loglikelihood

    def timed_loglikelihood(requests, *args, **kwargs):
        start = time.perf_counter()
        result = original(requests, *args, **kwargs)
        loglikelihood_seconds.append(time.perf_counter() - start)
        return result

    lm.loglikelihood = timed_loglikelihood  # instance attribute: simple_evaluate calls getattr(lm, ...)
    with tempfile.TemporaryDirectory() as tmp:
        write_task_yaml(Path(tmp), data_file, items)
        wall, cpu = time.perf_counter(), time.process_time()
        out = simple_evaluate(
            model=lm, tasks=[TASK_NAME], task_manager=TaskManager(include_path=tmp),
            num_fewshot=0, limit=limit, bootstrap_iters=0, log_samples=True,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    samples = sorted(out["samples"][TASK_NAME], key=lambda s: s["doc_id"])
    logprobs = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    metrics = out["results"][TASK_NAME]
    return {
        "acc": metrics["acc,none"], "acc_norm": metrics["acc_norm,none"], "n": len(samples),
        "correct": [s["acc"] for s in samples], "correct_norm": [s["acc_norm"] for s in samples],
        "logprobs": logprobs, "wall_s": wall, "cpu_s": cpu, "scoring_s": sum(loglikelihood_seconds),
    }


def run_labkit(model_dir: str, items: list[dict], batch_size: int | None) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit.eval.mcscore import score_multiple_choice

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    _warm_up(model)
    if batch_size is None:  # what run_evaluation uses with the default eval.batch_size
        from labkit.config import EvalConfig
        from labkit.infer.fastgen import mc_batch_items

        batch_size = mc_batch_items(model, EvalConfig().batch_size)
    wall, cpu = time.perf_counter(), time.process_time()
    out = score_multiple_choice(model, tokenizer, items, batch_size=batch_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    records = out["per_item"]
    return {
        "acc": out["aggregate"]["acc"], "acc_norm": out["aggregate"]["acc_norm"], "n": len(records),
        "acc_ci": out["aggregate"]["acc_ci"], "acc_norm_ci": out["aggregate"]["acc_norm_ci"],
        "correct": [float(r["correct"]) for r in records], "correct_norm": [float(r["correct_norm"]) for r in records],
        "logprobs": [r["logprobs"] for r in records], "wall_s": wall, "cpu_s": cpu, "scoring_s": wall,
    }


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda k: (values[k], -k))


def compare(harness: dict, labkit: dict, items: list[dict]) -> dict[str, Any]:
    if harness["n"] != labkit["n"]:
        raise RuntimeError(f"harness scored {harness['n']} items but labkit {labkit['n']}.")
    pred_agree = norm_agree = 0
    max_diff = 0.0
    for item, h, l in zip(items, harness["logprobs"], labkit["logprobs"]):
        lengths = [len(c) for c in item["choices"]]
        pred_agree += _argmax(h) == _argmax(l)
        norm_agree += _argmax([v / n for v, n in zip(h, lengths)]) == _argmax([v / n for v, n in zip(l, lengths)])
        max_diff = max(max_diff, max(abs(a - b) for a, b in zip(h, l)))
    return {"pred_agree": pred_agree, "pred_norm_agree": norm_agree, "max_abs_logprob_diff": max_diff}


def format_table(harness: dict, labkit: dict, agreement: dict) -> str:
    n = harness["n"]
    rows = [("", "lm-eval HFLM", "labkit.eval.mcscore")]
    rows.append(("acc", f"{100 * harness['acc']:.2f}", f"{100 * labkit['acc']:.2f}"))
    rows.append(("acc_norm", f"{100 * harness['acc_norm']:.2f}", f"{100 * labkit['acc_norm']:.2f}"))
    rows.append(("scoring wall s", f"{harness['scoring_s']:.1f}", f"{labkit['scoring_s']:.1f}"))
    rows.append(("items/s (scoring)", f"{n / harness['scoring_s']:.2f}", f"{n / labkit['scoring_s']:.2f}"))
    rows.append(("items/s (end to end)", f"{n / harness['wall_s']:.2f}", f"{n / labkit['wall_s']:.2f}"))
    rows.append(("CPU s (all threads)", f"{harness['cpu_s']:.1f}", f"{labkit['cpu_s']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    ci = labkit["acc_ci"]
    lines += [
        "",
        f"items: {n}; labkit acc 95% CI [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
        f"speed-up (scoring items/s): {harness['scoring_s'] / labkit['scoring_s']:.2f}x; "
        f"end to end: {harness['wall_s'] / labkit['wall_s']:.2f}x; CPU time: {harness['cpu_s'] / labkit['cpu_s']:.2f}x",
        f"predictions agree: acc {agreement['pred_agree']}/{n}, acc_norm {agreement['pred_norm_agree']}/{n}; "
        f"max |logprob diff| {agreement['max_abs_logprob_diff']:.2e}",
    ]
    return "\n".join(lines)


TOLERANCE_POINTS = 0.5


def parity_row(name: str, harness: dict, labkit: dict, agreement: dict) -> dict[str, Any]:
    n = harness["n"]
    diffs = {m: 100 * (labkit[m] - harness[m]) for m in ("acc", "acc_norm")}
    return {"file": name, "n": n, **{f"harness_{m}": 100 * harness[m] for m in ("acc", "acc_norm")},
            **{f"labkit_{m}": 100 * labkit[m] for m in ("acc", "acc_norm")},
            "diff_acc": diffs["acc"], "diff_acc_norm": diffs["acc_norm"],
            "agree": f"{agreement['pred_agree']}/{n}", "agree_norm": f"{agreement['pred_norm_agree']}/{n}",
            "max_logprob_diff": agreement["max_abs_logprob_diff"],
            "harness_items_s": n / harness["scoring_s"], "labkit_items_s": n / labkit["scoring_s"],
            "speedup": harness["scoring_s"] / labkit["scoring_s"], "cpu_ratio": harness["cpu_s"] / labkit["cpu_s"],
            "within": all(abs(d) <= TOLERANCE_POINTS for d in diffs.values())}


def format_parity_table(rows: list[dict]) -> str:
    lines = ["| file | items | acc lm-eval | acc labkit | acc_norm lm-eval | acc_norm labkit | predictions agree "
             "(acc / acc_norm) | max abs logprob diff | within 0.5 pts | items/s lm-eval | items/s labkit | "
             "speed-up (CPU s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['n']} | {r['harness_acc']:.2f} | {r['labkit_acc']:.2f} | "
                     f"{r['harness_acc_norm']:.2f} | {r['labkit_acc_norm']:.2f} | {r['agree']} / {r['agree_norm']} | "
                     f"{r['max_logprob_diff']:.1e} | {'yes' if r['within'] else 'NO'} | {r['harness_items_s']:.2f} | "
                     f"{r['labkit_items_s']:.2f} | {r['speedup']:.2f}x ({r['cpu_ratio']:.2f}x) |")
    return "\n".join(lines)


def run_all(model_dir: str, folder: Path, limit: int | None, harness_batch: int, labkit_batch: int | None
            ) -> list[dict]:
    from labkit.eval.mcscore import load_mc_jsonl

    rows = []
    for data_file in sorted(folder.glob("*.jsonl")):
        items = load_mc_jsonl(data_file, limit=limit)
        harness = run_harness(model_dir, data_file, items, limit, harness_batch)
        labkit = run_labkit(model_dir, items, labkit_batch)
        rows.append(parity_row(data_file.name, harness, labkit, compare(harness, labkit, items)))
        print(format_parity_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="one multiple-choice file")
    source.add_argument("--all", type=Path, metavar="DIR", help="every *.jsonl file of DIR, one table")
    parser.add_argument("--out", type=Path, help="with --all: also write the table to this markdown file")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--harness-batch-size", type=int, default=16, help="pairs per forward (HFLM)")
    parser.add_argument("--labkit-batch-size", type=int, default=None,
                        help="items per batch (labkit; default: what `labkit eval` uses on this device)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from labkit.eval.mcscore import load_mc_jsonl

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; load average before: {os.getloadavg()[0]:.1f}", flush=True)
    if args.all:
        rows = run_all(args.model_dir, args.all, args.limit, args.harness_batch_size, args.labkit_batch_size)
        table = format_parity_table(rows)
        print(table)
        if args.out:
            args.out.write_text(table + "\n")
        if not all(r["within"] for r in rows):
            raise SystemExit(f"parity failed: a difference above {TOLERANCE_POINTS} points")
        return
    items = load_mc_jsonl(args.data, limit=args.limit)
    harness = run_harness(args.model_dir, args.data, items, args.limit, args.harness_batch_size)
    labkit = run_labkit(args.model_dir, items, args.labkit_batch_size)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(format_table(harness, labkit, compare(harness, labkit, items)))


if __name__ == "__main__":
    main()
