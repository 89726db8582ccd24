"""Merge a LoRA adapter into its base model's weights, streaming shard by shard, and save a 16-bit checkpoint.

Why hand-written: PEFT's ``merge_and_unload`` needs the whole base model loaded in memory (in the merge dtype,
plus the adapter), which is where Colab users ran out of RAM on 3B models and lost their work. Here the base
checkpoint's safetensors files are read one tensor at a time with ``safetensors.safe_open``; each targeted
weight gets ``scale * B @ A`` added (in float32), the result is cast to bf16/fp16 and collected into an output
shard that is written (``safetensors.torch.save_file``) as soon as it reaches ``max_shard_bytes``. Peak RAM is
about one output shard plus one weight matrix in float32, whatever the model size. ``tests/test_export.py``
checks the result against PEFT's ``merge_and_unload`` on the tiny model; ``benchmarks/merge_memory.py``
measures the peak RAM at Llama-3.2-3B size.

Supported: plain LoRA, rsLoRA (``alpha / sqrt(r)``), ``rank_pattern`` / ``alpha_pattern``, ``fan_in_fan_out``
and DoRA (``m / ||W + dW||_row * (W + dW)``, as PEFT merges it). Everything else PEFT can put in an adapter
(``modules_to_save``, trainable tokens, LoRA on embeddings, LoRA biases, other LoRA variants) is refused with
:class:`UnsupportedAdapter` rather than merged wrongly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.export.errors import ExportError, UnsupportedAdapter
from labkit.runs import atomic_write_json

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
MERGE_RECORD = "labkit_merge.json"
PEFT_PREFIX = "base_model.model."
DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16", "f16": "float16"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json")
CONFIG_FILES = ("config.json", "generation_config.json")
DEFAULT_SHARD_BYTES = 1 << 30


@dataclass
class LoraModule:
    """One adapted linear layer: its A / B matrices, scale and (DoRA) magnitude vector."""

    A: "torch.Tensor"  # noqa: F821  (r, in)
    B: "torch.Tensor"  # noqa: F821  (out, r)
    scaling: float
    magnitude: "torch.Tensor | None" = None  # noqa: F821
    fan_in_fan_out: bool = False


# ------------------------------------------------------------------ reading the adapter

def _check_supported(config) -> None:
    """Refuse adapter features whose merge this module does not implement (instead of merging them wrongly)."""
    problems = []
    if getattr(config, "peft_type", None) is not None and str(config.peft_type).split(".")[-1] != "LORA":
        problems.append(f"peft_type={config.peft_type} (only LoRA adapters can be merged here)")
    if config.modules_to_save:
        problems.append(f"modules_to_save={config.modules_to_save} (fully trained copies of whole layers)")
    if getattr(config, "trainable_token_indices", None):
        problems.append("trainable_token_indices (trained token embeddings)")
    if config.bias != "none":
        problems.append(f"bias={config.bias!r}")
    if getattr(config, "lora_bias", False):
        problems.append("lora_bias=True")
    if getattr(config, "layer_replication", None):
        problems.append("layer_replication")
    if getattr(config, "target_parameters", None):
        problems.append(f"target_parameters={config.target_parameters}")
    for field in dataclasses.fields(config):  # other LoRA variants (aLoRA, Arrow, VeLoRA, ...) change the maths
        if field.metadata.get("is_lora_variant") and field.name != "use_dora" and getattr(config, field.name):
            problems.append(f"{field.name}={getattr(config, field.name)!r}")
    if isinstance(config.init_lora_weights, str) and config.init_lora_weights.lower().startswith(("mica", "loftq")):
        problems.append(f"init_lora_weights={config.init_lora_weights!r}")
    if problems:
        raise UnsupportedAdapter(
            "the streaming merge cannot merge this adapter: it uses " + "; ".join(problems) + ". Train with a "
            "plain LoRA/rsLoRA/DoRA adapter (labkit's lora.* settings), or export the adapter alone "
            "(export_adapter) and merge it with PEFT's merge_and_unload on a machine with enough RAM.")


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's per-module override (rank_pattern / alpha_pattern): a key matches a suffix of the module path."""
    from peft.utils.other import get_pattern_key

    if not patterns:
        return default
    key = get_pattern_key(list(patterns), module)
    return patterns.get(key, default)


def _module_name(key: str) -> tuple[str, str]:
    """``base_model.model.X.lora_A.weight`` -> (``X``, ``lora_A``)."""
    name = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
    for part in ("lora_A.weight", "lora_B.weight", "lora_magnitude_vector"):
        if name.endswith("." + part):
            return name[: -len(part) - 1], part.split(".")[0]
    raise UnsupportedAdapter(f"adapter tensor {key!r} is not a LoRA A/B matrix or DoRA magnitude (LoRA on "
                             f"embeddings or extra trained layers cannot be merged here)")


def load_lora(adapter_dir: str | Path) -> dict[str, LoraModule]:
    """The adapter's layers keyed by the base model's module path (e.g. ``model.layers.0.mlp.down_proj``)."""
    import peft
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (adapter_dir / name).exists():
            raise ExportError(f"{adapter_dir} has no {name}: give the folder that save_pretrained wrote for the "
                              f"adapter (run/adapter/ after training)")
    config = peft.LoraConfig.from_pretrained(str(adapter_dir))
    _check_supported(config)
    parts: dict[str, dict] = {}
    for key, tensor in load_file(adapter_dir / ADAPTER_WEIGHTS).items():
        module, part = _module_name(key)
        parts.setdefault(module, {})[part] = tensor
    modules = {}
    for module, found in parts.items():
        if "lora_A" not in found or "lora_B" not in found:
            raise UnsupportedAdapter(f"adapter layer {module!r} lacks its lora_A or lora_B matrix: the adapter "
                                     f"file is incomplete; save it again")
        if config.use_dora and "lora_magnitude_vector" not in found:
            raise UnsupportedAdapter(f"adapter layer {module!r} is DoRA but has no magnitude vector")
        rank = found["lora_A"].shape[0]
        alpha = _pattern_value(config.alpha_pattern, module, config.lora_alpha)
        scaling = alpha / math.sqrt(rank) if config.use_rslora else alpha / rank
        modules[module] = LoraModule(found["lora_A"], found["lora_B"], scaling,
                                     found.get("lora_magnitude_vector"), bool(config.fan_in_fan_out))
    if not modules:
        raise UnsupportedAdapter(f"{adapter_dir / ADAPTER_WEIGHTS} holds no LoRA layers")
    return modules


# ------------------------------------------------------------------ the merge maths

def merged_weight(weight, lora: LoraModule, name: str = "weight"):
    """``weight`` with the LoRA (or DoRA) update folded in, in float32."""
    import torch

    base = weight.float()
    if lora.fan_in_fan_out:  # GPT-2 style Conv1D stores (in, out); PEFT's delta is transposed to match
        base = base.T
    delta = (lora.B.float() @ lora.A.float()) * lora.scaling
    if delta.shape != base.shape:
        raise ExportError(f"adapter layer {name!r} has shape {tuple(delta.shape)} but the base weight is "
                          f"{tuple(base.shape)}: the adapter was trained on a different base model")
    merged = base + delta
    if lora.magnitude is not None:  # DoRA: rescale each output row to the learned magnitude
        norm = torch.linalg.norm(merged, dim=1)
        merged = (lora.magnitude.float() / norm).view(-1, 1) * merged
    return merged.T if lora.fan_in_fan_out else merged


# ------------------------------------------------------------------ reading the base checkpoint

def base_shards(base_dir: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint folder, in index order."""
    base_dir = Path(base_dir)
    if (base_dir / INDEX).exists():
        weight_map = json.loads((base_dir / INDEX).read_text())["weight_map"]
        return [base_dir / name for name in dict.fromkeys(weight_map.values())]
    if (base_dir / SINGLE).exists():
        return [base_dir / SINGLE]
    if list(base_dir.glob("*.bin")):
        raise ExportError(f"{base_dir} holds PyTorch .bin weights; the streaming merge reads safetensors. "
                          f"Load and save_pretrained the base model once to convert it")
    raise ExportError(f"{base_dir} has no {SINGLE} or {INDEX}: give a local checkpoint folder "
                      f"(labkit.models.resolve(name))")


def _tensor_names(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def _read_tensor(path: Path, name: str):
    """One tensor, with the file opened just for it: closing unmaps the file, so the pages read from a
    multi-GB shard do not stay counted in this process's memory while the rest of the shard is processed."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor(name)


# ------------------------------------------------------------------ writing output shards

class ShardWriter:
    """Collects tensors and writes a safetensors shard each time ``max_bytes`` would be exceeded."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes
        self.pending: dict = {}
        self.pending_bytes = 0
        self.files: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0

    def add(self, name: str, tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self.pending and self.pending_bytes + size > self.max_bytes:
            self.flush()
        self.pending[name] = tensor.contiguous()
        self.pending_bytes += size
        self.total_bytes += size

    def flush(self) -> None:
        from safetensors.torch import save_file

        if not self.pending:
            return
        path = self.folder / f"part-{len(self.files):05d}.safetensors"
        save_file(self.pending, str(path), metadata={"format": "pt"})
        self.files.append((path, list(self.pending)))
        self.pending, self.pending_bytes = {}, 0

    def finish(self) -> list[str]:
        """Rename parts to the Hugging Face names and write the index (none for a single file)."""
        self.flush()
        count = len(self.files)
        if count == 1:
            self.files[0][0].rename(self.folder / SINGLE)
            return [SINGLE]
        weight_map, names = {}, []
        for number, (path, tensors) in enumerate(self.files, 1):
            name = f"model-{number:05d}-of-{count:05d}.safetensors"
            path.rename(self.folder / name)
            names.append(name)
            weight_map.update(dict.fromkeys(tensors, name))
        atomic_write_json(self.folder / INDEX, {"metadata": {"total_size": self.total_bytes},
                                               "weight_map": weight_map})
        return names


# ------------------------------------------------------------------ the merge

def _copy_side_files(base_dir: Path, adapter_dir: Path, target: Path, dtype: str) -> None:
    """Config and generation config from the base; tokenizer from the adapter (it carries training's fixes)."""
    for name in CONFIG_FILES + TOKENIZER_FILES:
        if (base_dir / name).exists():
            shutil.copy2(base_dir / name, target / name)
    if any((adapter_dir / name).exists() for name in TOKENIZER_FILES):
        for name in TOKENIZER_FILES:
            (target / name).unlink(missing_ok=True)
            if (adapter_dir / name).exists():
                shutil.copy2(adapter_dir / name, target / name)
    config_path = target / "config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        config["dtype"] = dtype
        if "torch_dtype" in config:
            config["torch_dtype"] = dtype
        atomic_write_json(config_path, config)


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: str = "bfloat16",
                  max_shard_bytes: int = DEFAULT_SHARD_BYTES, progress: bool = True) -> dict:
    """Write ``base + adapter`` as a 16-bit checkpoint in ``out_dir``; returns a summary of what was merged.

    The folder appears only when complete (written as ``<out_dir>.partial`` then renamed).
    """
    import torch
    from tqdm.auto import tqdm

    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is invalid: use bfloat16 or float16")
    dtype = DTYPES[dtype]
    torch_dtype = getattr(torch, dtype)
    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    started = time.time()
    lora = load_lora(adapter_dir)
    shards = base_shards(base_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writer = ShardWriter(staging, max_shard_bytes)
    merged, applied = 0, set()
    names = [(shard, name) for shard in shards for name in _tensor_names(shard)]
    for shard, name in tqdm(names, desc="merging", unit="tensor", disable=not progress):
        tensor = _read_tensor(shard, name)
        module = name.removesuffix(".weight")
        if name.endswith(".weight") and module in lora:
            tensor = merged_weight(tensor, lora[module], module)
            applied.add(module)
            merged += 1
        if tensor.is_floating_point():
            tensor = tensor.to(torch_dtype)
            if not torch.isfinite(tensor).all():
                raise ExportError(f"{name} is not finite after casting to {dtype} (values too large); "
                                  f"use dtype=bfloat16")
        writer.add(name, tensor)
        del tensor
    missing = sorted(set(lora) - applied)
    if missing:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"the adapter has layers that the base checkpoint {base_dir} lacks ({', '.join(missing[:3])}"
                          f"{' ...' if len(missing) > 3 else ''}): it was trained on another base model, or it adapts "
                          f"lm_head of a model whose lm_head is tied to the embeddings (not supported)")
    files = writer.finish()
    _copy_side_files(base_dir, adapter_dir, staging, dtype)
    summary = {"base": str(base_dir), "adapter": str(adapter_dir), "dtype": dtype, "merged_layers": merged,
               "dora": any(m.magnitude is not None for m in lora.values()), "files": files,
               "bytes": writer.total_bytes, "seconds": round(time.time() - started, 2)}
    atomic_write_json(staging / MERGE_RECORD, summary)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    summary["path"] = str(out_dir)
    return summary
