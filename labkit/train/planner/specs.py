"""The planner's data: GPU specifications (one table) and model shapes (read from a config, or a known table).

GPU numbers are the vendors' spec-sheet values: memory as torch reports it (GiB), dense 16-bit tensor-core
throughput (TFLOP/s, no sparsity), and whether bf16 exists. Only the H200 is measured here
(``reports/gpu_benchmark.md``); every other GPU's prediction scales the H200's achieved fraction of peak.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.config import ConfigError

GIB = 2**30


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float        # what torch.cuda reports as total memory
    bf16: bool               # False: training runs in fp16 (model.dtype=auto)
    peak_tflops: float       # dense 16-bit tensor-core peak (spec sheet)
    measured: bool = False   # True only where reports/gpu_benchmark.md has measurements


GPUS: dict[str, GpuSpec] = {spec.name: spec for spec in (
    GpuSpec("T4", 14.7, False, 65.0),
    GpuSpec("L4", 22.5, True, 121.0),
    GpuSpec("A10G", 22.5, True, 70.0),
    GpuSpec("A100-40GB", 39.4, True, 312.0),
    GpuSpec("A100-80GB", 79.2, True, 312.0),
    GpuSpec("H100", 79.2, True, 989.0),
    GpuSpec("H200", 140.4, True, 989.0, measured=True),   # 143,771 MiB on the benchmark's machine
)}
CPU = "cpu"
# Achieved fp32 training throughput per core, from the cpu-demo run (238 tokens/s on 2 cores: see
# labkit.train.planner.EFFICIENCY); a laptop's cores differ, so CPU times are rough.
CPU_GFLOPS_PER_CORE = 77.0


def gpu_names() -> list[str]:
    return [*GPUS, CPU]


def get_gpu(name: str) -> GpuSpec:
    """The table entry for ``--gpu NAME`` (case-insensitive)."""
    for key, spec in GPUS.items():
        if key.lower() == name.lower():
            return spec
    raise ConfigError(f"--gpu {name!r} is unknown: use one of {', '.join(gpu_names())}")


def detect_gpu() -> str:
    """The name in :data:`GPUS` of the GPU present (closest by memory when its name is not in the table), or
    'cpu' without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return CPU
    props = torch.cuda.get_device_properties(0)
    label, total = props.name.upper().replace(" ", ""), props.total_memory / GIB
    if "A100" in label:
        return "A100-80GB" if total > 50 else "A100-40GB"
    for key in ("H200", "H100", "A10G", "L4", "T4"):
        if key in label:
            return key
    return min(GPUS, key=lambda k: abs(GPUS[k].memory_gib - total))  # unknown name: the closest by memory


# ------------------------------------------------------------------ model shapes

@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection in one decoder layer (Llama / Gemma naming)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def layer_linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """The LM head's weights (the embedding's, when tied): counted in matmul FLOPs either way."""
        return self.vocab * self.hidden

    @property
    def norm_params(self) -> int:
        return (2 * self.layers + 1) * self.hidden

    @property
    def total_params(self) -> int:
        untied = 0 if self.tied else self.head_params
        return self.embedding_params + untied + self.layer_linear_params + self.norm_params

    def to_dict(self) -> dict:
        return {**asdict(self), "total_params": self.total_params}


def _llama(h, layers, heads, kv, head_dim, inter, vocab, tied=True) -> ModelShape:
    return ModelShape(h, layers, heads, kv, head_dim, inter, vocab, tied)


# Shapes of models the presets name, for offline use (values from each model's config.json).
KNOWN_SHAPES: dict[str, ModelShape] = {
    "unsloth/llama-3.2-1b-instruct": _llama(2048, 16, 32, 8, 64, 8192, 128256),
    "unsloth/llama-3.2-3b-instruct": _llama(3072, 28, 24, 8, 128, 8192, 128256),
    "smollm2-135m-instruct": _llama(576, 30, 9, 3, 64, 1536, 49152),
    "gemma3-270m": _llama(640, 18, 4, 1, 256, 2048, 262144),
    "tiny-random-llama": _llama(64, 2, 4, 2, 16, 128, 49152),
}
ALIASES = {"meta-llama/llama-3.2-1b-instruct": "unsloth/llama-3.2-1b-instruct",
           "unsloth/llama-3.2-1b": "unsloth/llama-3.2-1b-instruct",
           "unsloth/llama-3.2-1b-instruct-bnb-4bit": "unsloth/llama-3.2-1b-instruct",
           "meta-llama/llama-3.2-3b-instruct": "unsloth/llama-3.2-3b-instruct",
           "unsloth/llama-3.2-3b": "unsloth/llama-3.2-3b-instruct",
           "unsloth/llama-3.2-3b-instruct-bnb-4bit": "unsloth/llama-3.2-3b-instruct",
           "huggingfacetb/smollm2-135m-instruct": "smollm2-135m-instruct",
           "google/gemma-3-270m": "gemma3-270m", "unsloth/gemma-3-270m": "gemma3-270m"}


def shape_from_config(config: dict) -> ModelShape:
    """A shape from a transformers ``config.json`` dict (Llama, Gemma, Qwen, Mistral style keys)."""
    config = config.get("text_config", config)
    try:
        h, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        return ModelShape(hidden=h, layers=int(config["num_hidden_layers"]), heads=heads,
                          kv_heads=int(config.get("num_key_value_heads") or heads),
                          head_dim=int(config.get("head_dim") or h // heads),
                          intermediate=int(config["intermediate_size"]), vocab=int(config["vocab_size"]),
                          tied=bool(config.get("tie_word_embeddings", True)))
    except KeyError as err:
        raise ConfigError(f"the model's config.json has no {err.args[0]!r}: the planner knows decoder-only "
                          "models with hidden_size, num_hidden_layers, num_attention_heads, intermediate_size "
                          "and vocab_size") from None


def _config_file(name: str) -> Path | None:
    """config.json of a local folder, an already materialised embedded model, or a hub id in the local cache."""
    folder = Path(name).expanduser()
    if (folder / "config.json").exists():
        return folder / "config.json"
    from labkit.models import cache_dir

    if (cache_dir() / name / "config.json").exists():
        return cache_dir() / name / "config.json"
    if "/" in name:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        found = try_to_load_from_cache(name, "config.json")
        return Path(found) if isinstance(found, str) else None
    return None


def model_shape(name: str) -> tuple[ModelShape, str]:
    """(shape, where it came from) for ``model.name``, offline: a config.json found locally, else the table."""
    path = _config_file(name)
    if path is not None:
        return shape_from_config(json.loads(path.read_text())), str(path)
    key = ALIASES.get(name.lower(), name.lower())
    if key in KNOWN_SHAPES:
        return KNOWN_SHAPES[key], "labkit.train.planner.specs.KNOWN_SHAPES"
    raise ConfigError(f"model.name={name!r}: no config.json found locally and the shape is not in the planner's "
                      f"table ({', '.join(KNOWN_SHAPES)}); give a local model folder, or download the model once")
