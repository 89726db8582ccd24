"""Where labkit runs: device detection, the versions banner, seeding, and the offline switches."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys

LIBRARIES = ("labkit", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth")


COLAB_MARKERS = ("COLAB_RELEASE_TAG", "COLAB_GPU", "COLAB_BACKEND_VERSION")
# bf16 tensor-core arithmetic arrived with Ampere (compute capability 8.0). Older GPUs (a T4 is 7.5) run bf16 only
# through emulation, which ``torch.cuda.is_bf16_supported()`` counts as support by default: labkit asks for 8.0.
BF16_MIN_CAPABILITY = (8, 0)


def native_bf16(capability: tuple[int, int]) -> bool:
    """Does a GPU of this compute capability compute bf16 in hardware (not through emulation)?"""
    return tuple(capability) >= BF16_MIN_CAPABILITY


def in_colab() -> bool:
    """Google Colab: one of its environment variables is set, or its ``google.colab`` package is importable."""
    if any(marker in os.environ for marker in COLAB_MARKERS) or "google.colab" in sys.modules:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec("google.colab") is not None
    except ImportError:  # no ``google`` package at all
        return False


def pick_device(requested: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit choice is checked to exist."""
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if requested == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available.get(requested, False):
        raise RuntimeError(f"model.device={requested!r} is not available here; use model.device=auto or cpu")
    return requested


def versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape results (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_summary() -> dict[str, object]:
    import torch

    info: dict[str, object] = {"device": pick_device(), "cpu_threads": torch.get_num_threads(),
                               "platform": platform.platform(), "colab": in_colab()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        capability = torch.cuda.get_device_capability(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_count=torch.cuda.device_count(), capability="%d.%d" % capability,
                    bf16=native_bf16(capability))
    return info


def import_unsloth_early(backend: str = "auto") -> bool:
    """Import Unsloth before transformers / TRL / PEFT when it will be used: it patches them on import and warns
    that some optimisations are lost otherwise. Does nothing on CPU, without Unsloth, or with backend=transformers.
    Notebooks call it through :func:`labkit.notebook.start`, the CLI before its training stages."""
    import importlib.util
    import sys

    if backend == "transformers" or "unsloth" in sys.modules or importlib.util.find_spec("unsloth") is None:
        return "unsloth" in sys.modules
    import torch

    if not torch.cuda.is_available():
        return False
    import unsloth  # noqa: F401

    return True


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that every random step repeats."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def offline_mode(enabled: bool = True) -> None:
    """Stop the Hugging Face libraries from trying the network (the default on machines without one)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if enabled:
            os.environ[var] = "1"
        else:
            os.environ.pop(var, None)


def banner(seed: int | None = None) -> str:
    """The first thing every notebook prints: versions, device and seed."""
    parts = [f"{k} {v}" for k, v in versions().items() if v]
    dev = device_summary()
    lines = ["versions: " + ", ".join(parts),
             "device:   " + ", ".join(f"{k}={v}" for k, v in dev.items() if k != "platform")]
    if seed is not None:
        lines.append(f"seed:     {seed}")
    return "\n".join(lines)
