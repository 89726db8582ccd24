"""Evaluation speed on a GPU: today's generation / MC-scoring path against the new one, side by side.

    python -m benchmarks.eval_speed                      # CUDA: SmolLM2-135M and a random Llama-3.2-1B shape
    python -m benchmarks.eval_speed --tiny               # CPU smoke run on the tiny random Llama

For each model: the generative suite (greedy answers to the project's test prompts, longest first as
``labkit.eval`` orders them) with today's path (padded ``model.generate`` batches of ``--batch-size``) and with each
path of ``--paths``; then MC scoring (``labkit.eval.mcscore``): the two-pass KV-cache layout with ``--batch-size``
items a batch (the scorer before the one-row layout) against the one-row layout with the batch ``labkit eval`` picks
(sized from free GPU memory; at most 8 items on the CPU). Each path runs once on a
few items first (compilation, CUDA-graph capture; the seconds are printed) and is then timed on all items.
Prints items/s, the GPU's busy share (NVML utilisation sampled every 50 ms while timing), the count of equal
greedy outputs and equal MC predictions, and the items whose outputs differ (bf16 near-ties).

The 1B shape is random-initialised (no download): its answers run to ``--max-new-tokens`` and use ids beyond
SmolLM2's tokenizer (which decodes only its own), so its equality count compares the decodable part.
``--paths`` names the new generation paths to time (default: ``batched``, ``continuous`` with labkit's settings,
``continuous-default`` with transformers' defaults, and ``static``, each forced; what "auto" would pick is printed),
one table row each; a path that fails gets its error in its row. With ``--tiny`` the new paths are ``batched`` and
``static`` (on the CPU "auto" keeps today's path and ``continuous`` needs CUDA).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

GEN_CATEGORIES = ("function_calling", "reading_qa", "arithmetic", "general")


# ------------------------------------------------------------------ models and items

def load_model(name: str, device: str):
    import torch

    from labkit.models import load_causal_lm

    if name == "tiny":
        return load_causal_lm("tiny-random-llama")
    if name == "smollm2-135m":
        return load_causal_lm("smollm2-135m-instruct", device=device, dtype="bfloat16")
    if name == "llama-3.2-1b-random":
        from transformers import LlamaConfig, LlamaForCausalLM

        from benchmarks.gpu_train import LLAMA_3_2_1B

        torch.manual_seed(0)
        config = LlamaConfig(**LLAMA_3_2_1B, bos_token_id=1, eos_token_id=2, pad_token_id=2)
        with torch.device(device):
            model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
        return model.eval()
    raise ValueError(f"unknown model {name!r}")


def generative_prompts(count: int, seed: int = 0) -> list[list[dict]]:
    """``count`` test prompts from the project's data (an equal seeded share per category), longest first."""
    from labkit.config import project_data_dir
    from labkit.data.standardise import standardise_row
    from labkit.eval.items import seeded_subset, split_last_answer
    from labkit.runs import read_jsonl

    prompts, share = [], -(-count // len(GEN_CATEGORIES))
    for category in GEN_CATEGORIES:
        rows = [standardise_row(row, "sharegpt") for row in read_jsonl(project_data_dir() / category / "test.jsonl")]
        prompts += [split_last_answer(row)[0] for row in seeded_subset(rows, share,
                                                                        seed, category)]
    return sorted(prompts[:count], key=lambda p: -sum(len(m["content"]) for m in p))


# ------------------------------------------------------------------ measuring

class BusySampler:
    """The GPU's utilisation (NVML, percent of time a kernel ran) sampled in a thread; None without NVML/CUDA."""

    def __init__(self, device):
        self.device, self.samples, self._stop = device, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import torch

        while not self._stop.is_set():
            try:
                self.samples.append(torch.cuda.utilization(self.device))
            except Exception:  # noqa: BLE001 - no NVML: no reading
                return
            time.sleep(0.05)

    def __enter__(self):
        if self.device.type == "cuda":
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def share(self) -> float | None:
        return sum(self.samples) / len(self.samples) / 100 if self.samples else None


def timed(device, fn):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    with BusySampler(device) as sampler:
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return result, seconds, sampler.share()


def run_paths(device, label: str, items: list, paths: dict, warm: int) -> list[dict]:
    """Warm each path on ``warm`` items, then time it on all items; one row per path after the first ("today"),
    each compared with today's outputs and speed. A path that raises gets its error in the row, not a crash."""
    done = {}
    for name, fn in paths.items():
        try:
            start = time.perf_counter()
            fn(items[:warm])
            warmup = time.perf_counter() - start
            outputs, seconds, busy = timed(device, lambda: fn(items))
        except Exception as err:  # noqa: BLE001 - report the failing path and go on with the others
            print(f"{label}, path {name}: {type(err).__name__}: {str(err)[:300]}", flush=True)
            done[name] = {"error": f"{type(err).__name__}: {str(err)[:120]}"}
            continue
        done[name] = {"outputs": outputs, "seconds": seconds, "items_per_s": len(items) / seconds, "busy": busy,
                      "warmup_s": warmup}
        # each path as it finishes: a run cut off by a time limit still leaves its measured paths in the log
        print(f"{label}, path {name}: {len(items)} items in {seconds:.1f} s ({len(items) / seconds:.2f} items/s), "
              f"warm-up {warmup:.1f} s, GPU busy {'n/a' if busy is None else f'{100 * busy:.0f}%'}"
              + _equal_to_first(done, name), flush=True)
    today, *others = done
    rows = []
    for name in others:
        new = done[name]
        differ = [] if "error" in new or "error" in done[today] else _differing(done[today], new)
        rows.append({"label": label, "path": name, "n": len(items), "today": done[today], "new": new,
                     "differ": differ})
    return rows


def _differing(today: dict, new: dict) -> list[int]:
    """Indices where a path's outputs differ from today's (both finished without error)."""
    return [i for i, (a, b) in enumerate(zip(today["outputs"], new["outputs"])) if a != b]


def _equal_to_first(done: dict, name: str) -> str:
    """", equal to today's: k/n" once a later path has finished (printed as it finishes, like its speed)."""
    first = next(iter(done))
    if name == first or "error" in done[first]:
        return ""
    n = len(done[name]["outputs"])
    return f", equal to today's: {n - len(_differing(done[first], done[name]))}/{n}"


# ------------------------------------------------------------------ the two workloads

def generation_rows(model, tokenizer, prompts, args, device) -> list[dict]:
    from labkit.infer import fastgen
    from labkit.infer.generate import Sampling, generate_chat

    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    os.environ[fastgen.FAST_SWITCH] = "1"   # the bench measures the faster paths, which users get when they opt in
    paths = ["batched", "static"] if args.tiny else [p.strip() for p in args.paths.split(",")]
    print(f"auto picks: {fastgen.choose_path(model, sampling, 'auto', prompts=len(prompts))}", flush=True)

    def generate(path):
        if path == CONTINUOUS_DEFAULT:
            return lambda p: _with_default_continuous_settings(
                lambda: generate_chat(model, tokenizer, p, sampling, batch_size=args.batch_size, path="continuous"))
        return lambda p: generate_chat(model, tokenizer, p, sampling, batch_size=args.batch_size, path=path)

    return run_paths(device, "generative suite", prompts,
                     {"transformers": generate("transformers"), **{p: generate(p) for p in paths}},
                     warm=min(8, len(prompts)))


# A --paths name for continuous batching with transformers' own ContinuousBatchingConfig defaults (no CUDA graphs,
# no asynchronous loop with SDPA), to compare with labkit's CONTINUOUS_SETTINGS in the same run.
CONTINUOUS_DEFAULT = "continuous-default"


def _with_default_continuous_settings(fn):
    from labkit.infer import fastgen

    kept, fastgen.CONTINUOUS_SETTINGS = fastgen.CONTINUOUS_SETTINGS, {}
    try:
        return fn()
    finally:
        fastgen.CONTINUOUS_SETTINGS = kept


def mc_rows(model, tokenizer, items, args, device) -> dict:
    from labkit.eval.mcscore import score_multiple_choice
    from labkit.infer.fastgen import mc_batch_items

    auto = mc_batch_items(model, args.batch_size)
    print(f"MC items per batch: two-pass layout {args.batch_size}, one-row layout {auto}", flush=True)

    def score(batch_size, two_pass=False):
        return lambda chunk: [r["pred_norm"] for r in score_multiple_choice(
            model, tokenizer, chunk, batch_size=batch_size, progress=False, n_resamples=10,
            two_pass=two_pass)["per_item"]]

    return run_paths(device, "MC scoring", items, {"today": score(args.batch_size, two_pass=True),
                                                   f"one row, batch {auto}": score(auto)}, warm=min(4, len(items)))


def table(model_name: str, rows: list[dict]) -> str:
    def busy(value):
        return "n/a" if value is None else f"{100 * value:.0f}%"

    lines = [f"### {model_name}", "",
             "| workload | new path | items | today items/s | new items/s | speed-up | today GPU busy | new GPU busy "
             "| warm-up s (today / new) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        t, n = r["today"], r["new"]
        if "error" in t or "error" in n:
            lines.append(f"| {r['label']} | {r['path']} | {r['n']} | failed: {t.get('error') or n.get('error')} "
                         "| | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['path']} | {r['n']} | {t['items_per_s']:.2f} | {n['items_per_s']:.2f} "
                     f"| {n['items_per_s'] / t['items_per_s']:.2f}x | {busy(t['busy'])} | {busy(n['busy'])} "
                     f"| {t['warmup_s']:.1f} / {n['warmup_s']:.1f} |")
    lines.append("")
    for r in rows:
        if "error" in r["today"] or "error" in r["new"]:
            continue
        what = "equal greedy outputs" if r["label"] == "generative suite" else "equal MC predictions"
        lines.append(f"{what} ({r['path']}): {r['n'] - len(r['differ'])}/{r['n']}"
                     + (f" (differ: items {r['differ'][:20]})" if r["differ"] else ""))
        if r["label"] == "generative suite":
            lines += [f"  item {i}: today {r['today']['outputs'][i][:70]!r} / new {r['new']['outputs'][i][:70]!r}"
                      for i in r["differ"][:5]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on the tiny random Llama")
    parser.add_argument("--models", default="smollm2-135m,llama-3.2-1b-random")
    parser.add_argument("--items", type=int, default=400, help="generative prompts")
    parser.add_argument("--mc-items", type=int, default=166, help="MC items (the project's mc_knowledge test)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="the cpu-demo preset's eval.max_new_tokens")
    parser.add_argument("--batch-size", type=int, default=16, help="today's batch (the presets' eval.batch_size)")
    parser.add_argument("--paths", default="batched,continuous,continuous-default,static",
                        help="new generation paths to time against today's (labkit.infer.fastgen.PATHS, and "
                             f"{CONTINUOUS_DEFAULT}: continuous batching with transformers' default settings)")
    parser.add_argument("--tokenizer", help="a tokenizer folder (default: SmolLM2's, from labkit's model cache)")
    args = parser.parse_args(argv)
    import torch

    from labkit.eval.items import load_mc_items
    from labkit.models import load_tokenizer

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    names = ["tiny"] if args.tiny else [m.strip() for m in args.models.split(",")]
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        tokenizer = load_tokenizer("smollm2-135m-instruct")
    prompts = generative_prompts(args.items)
    mc_items = load_mc_items(args.mc_items, seed=0)
    print(f"device {device}; {len(prompts)} prompts, {len(mc_items)} MC items; torch {torch.__version__}", flush=True)
    for name in names:
        started = time.perf_counter()
        model = load_model(name, device.type)
        rows = generation_rows(model, tokenizer, prompts, args, device)
        if mc_items:
            rows += mc_rows(model, tokenizer, mc_items, args, device)
        print(table(name, rows), flush=True)
        print(f"({name}: {time.perf_counter() - started:.0f} s in all)\n", flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
