"""Peak RAM of the streaming merge (labkit.export.merge) on a model of Llama-3.2-3B's shape.

Builds random bf16 weights of that shape (about 6.4 GB) as one safetensors shard per decoder layer, without ever
holding the whole model in memory, plus a random rank-16 all-linear LoRA adapter; then runs the merge in a
fresh subprocess and reports that subprocess's peak resident memory (``ru_maxrss``) next to the model size.
Target: well under Colab's 12.7 GB of RAM.

    python -m benchmarks.merge_memory [--workdir DIR] [--keep] [--dtype bfloat16] [--shard-mb 1024]

The temporary files (about 13 GB: base + merged) are removed at the end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
             intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True, head_dim=128,
             max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0)
COLAB_RAM_GB = 12.7
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def layer_shapes(i: int) -> dict[str, tuple[int, ...]]:
    h, kv, m = SHAPE["hidden_size"], SHAPE["num_key_value_heads"] * SHAPE["head_dim"], SHAPE["intermediate_size"]
    p = f"model.layers.{i}."
    return {p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (m, h), p + "mlp.up_proj.weight": (m, h), p + "mlp.down_proj.weight": (h, m),
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,)}


def _random(shape, generator, dtype):
    import torch

    if len(shape) == 1:
        return torch.ones(shape, dtype=dtype)
    return (torch.randn(shape, generator=generator, dtype=torch.float32) * 0.02).to(dtype)


def build_base(folder: Path, seed: int = 0) -> int:
    """Write the random model shard by shard (one per layer); returns its size in bytes."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    folder.mkdir(parents=True, exist_ok=True)
    LlamaConfig(**SHAPE, dtype="bfloat16").to_json_file(folder / "config.json")
    generator = torch.Generator().manual_seed(seed)
    groups = [{"model.embed_tokens.weight": (SHAPE["vocab_size"], SHAPE["hidden_size"]),
               "model.norm.weight": (SHAPE["hidden_size"],)}]
    groups += [layer_shapes(i) for i in range(SHAPE["num_hidden_layers"])]
    weight_map, total = {}, 0
    for number, group in enumerate(groups, 1):
        name = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        tensors = {key: _random(shape, generator, torch.bfloat16) for key, shape in group.items()}
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map.update(dict.fromkeys(tensors, name))
        del tensors
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}))
    return total


def build_adapter(folder: Path, rank: int = 16, seed: int = 1) -> int:
    """A random rank-``rank`` LoRA on every linear layer, in PEFT's file format; returns its size in bytes."""
    import peft
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(TARGETS), task_type="CAUSAL_LM").save_pretrained(
        str(folder))
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for i in range(SHAPE["num_hidden_layers"]):
        for key, shape in layer_shapes(i).items():
            if len(shape) == 2:
                module = "base_model.model." + key.removesuffix(".weight")
                out_features, in_features = shape
                tensors[module + ".lora_A.weight"] = torch.randn((rank, in_features), generator=generator) * 0.01
                tensors[module + ".lora_B.weight"] = torch.randn((out_features, rank), generator=generator) * 0.01
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return sum(t.numel() * t.element_size() for t in tensors.values())


CHILD = """
import json, resource, sys, time
from labkit.export.merge import merge_adapter
started = time.time()
summary = merge_adapter(sys.argv[1], sys.argv[2], sys.argv[3], dtype=sys.argv[4], max_shard_bytes=int(sys.argv[5]),
                        progress=False)
print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "seconds": time.time() - started, "files": len(summary["files"]),
                  "merged_layers": summary["merged_layers"]}))
"""


def measure_merge(base: Path, adapter: Path, out: Path, dtype: str, shard_bytes: int) -> dict:
    """Run the merge in a fresh interpreter and read its peak RSS (also polled from here with psutil)."""
    import psutil

    process = subprocess.Popen([sys.executable, "-c", CHILD, str(base), str(adapter), str(out), dtype,
                                str(shard_bytes)], stdout=subprocess.PIPE, text=True)
    watched, polled = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            polled = max(polled, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    output = process.stdout.read()
    if process.returncode != 0:
        raise RuntimeError(f"the merge subprocess failed (exit code {process.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    result["polled_peak_rss_bytes"] = polled
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to write the temporary model (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary files")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--shard-mb", type=int, default=1024, help="output shard size in MiB")
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="labkit-merge-bench-"))
    free = shutil.disk_usage(work.parent if not work.exists() else work).free
    if free < 14e9:
        raise SystemExit(f"merge_memory needs about 14 GB of free disk in {work}; {free / 1e9:.1f} GB is free")
    try:
        started = time.time()
        model_bytes = build_base(work / "base")
        adapter_bytes = build_adapter(work / "adapter", rank=args.rank)
        built = time.time() - started
        result = measure_merge(work / "base", work / "adapter", work / "merged", args.dtype, args.shard_mb << 20)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    gb = 1e9
    report = {"shape": "Llama-3.2-3B (random weights)", "model_gb": round(model_bytes / gb, 2),
              "adapter_mb": round(adapter_bytes / 1e6, 1), "output_shard_mb": args.shard_mb, "dtype": args.dtype,
              "peak_rss_gb": round(result["peak_rss_bytes"] / gb, 2),
              "polled_peak_rss_gb": round(result["polled_peak_rss_bytes"] / gb, 2),
              "peak_over_model_size": round(result["peak_rss_bytes"] / model_bytes, 3),
              "merge_seconds": round(result["seconds"], 1), "build_seconds": round(built, 1),
              "output_files": result["files"], "merged_layers": result["merged_layers"],
              "fits_colab_12_7_gb": result["peak_rss_bytes"] / gb < COLAB_RAM_GB}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
