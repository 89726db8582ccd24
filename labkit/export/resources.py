"""Will the export fit? Free disk and RAM against what each step needs, checked before anything is written."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from labkit.export.errors import NotEnoughResources

GB = 1e9
# Bytes per parameter of each output (q8_0: 32 int8 values + one fp16 scale per block).
BYTES_PER_PARAM = {"merged": 2.0, "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_k_m": 0.6}
HEADROOM = 1.10          # 10% for metadata, tokenizer, temporary .partial files
RAM_OVERHEAD = 1.0 * GB  # Python, torch, transformers and the converter themselves


@dataclass(frozen=True)
class CheckpointSize:
    parameters: int
    largest_tensor: int  # elements


def checkpoint_size(model_dir: str | Path) -> CheckpointSize:
    """Parameter count and largest tensor of a safetensors checkpoint, read from the headers only."""
    from safetensors import safe_open

    from labkit.export.merge import base_shards

    total, largest = 0, 0
    for shard in base_shards(model_dir):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():
                count = 1
                for dim in handle.get_slice(name).get_shape():
                    count *= dim
                total += count
                largest = max(largest, count)
    return CheckpointSize(total, largest)


def disk_needed(size: CheckpointSize, formats: list[str]) -> float:
    return HEADROOM * size.parameters * (BYTES_PER_PARAM["merged"] + sum(BYTES_PER_PARAM[f] for f in formats))


def merge_ram_needed(size: CheckpointSize, max_shard_bytes: int) -> float:
    """One output shard being filled, plus one weight as read, in float32, and its merged copy."""
    return RAM_OVERHEAD + max_shard_bytes + size.largest_tensor * (2 + 4 + 4)


def parity_ram_needed(size: CheckpointSize, bytes_per_param: int) -> float:
    """One model in memory at a time (the reference is freed before a candidate loads), plus the logits kept."""
    return RAM_OVERHEAD + size.parameters * bytes_per_param


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def free_disk(path: str | Path) -> float:
    return float(shutil.disk_usage(_existing_parent(Path(path))).free)


def available_ram() -> float:
    import psutil

    return float(psutil.virtual_memory().available)


def check_resources(model_dir: str | Path, out_dir: str | Path, formats: list[str], max_shard_bytes: int) -> dict:
    """Raise :class:`NotEnoughResources` naming needed vs available; returns the numbers (for the report),
    including the dtype in which the parity check can afford to load models (float32, else bfloat16)."""
    size = checkpoint_size(model_dir)
    disk, free = disk_needed(size, formats), free_disk(out_dir)
    if disk > free:
        raise NotEnoughResources(
            f"exporting needs about {disk / GB:.1f} GB of free disk in {_existing_parent(Path(out_dir))} "
            f"(merged 16-bit model + {', '.join(formats)} GGUF for {size.parameters / 1e9:.2f}B parameters) but "
            f"only {free / GB:.1f} GB is free. Free some space, export fewer formats, or point LABKIT_RUNS "
            f"at a larger disk")
    ram = available_ram()
    merge = merge_ram_needed(size, max_shard_bytes)
    parity_dtype = "float32" if parity_ram_needed(size, 4) <= ram else "bfloat16"
    needed = max(merge, parity_ram_needed(size, 4 if parity_dtype == "float32" else 2))
    if needed > ram:
        raise NotEnoughResources(
            f"exporting needs about {needed / GB:.1f} GB of free RAM (the parity check loads the "
            f"{size.parameters / 1e9:.2f}B-parameter model in bfloat16) but only {ram / GB:.1f} GB is available. "
            f"Close other notebooks/kernels (restart the runtime to free the training model) and try again")
    return {"parameters": size.parameters, "disk_needed_gb": round(disk / GB, 2), "disk_free_gb": round(free / GB, 2),
            "ram_needed_gb": round(needed / GB, 2), "ram_available_gb": round(ram / GB, 2),
            "parity_dtype": parity_dtype}
