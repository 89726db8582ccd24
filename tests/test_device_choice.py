"""dtype and backend on a (faked) GPU: bf16 only where it is native, Unsloth where installed, and Unsloth imported
before transformers on both entry points (the notebooks' first cell and the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.config import ConfigError, ModelConfig
from labkit.train.loading import choose_backend, choose_dtype, resolve_dtype

REPO = Path(__file__).resolve().parents[1]

# Fake CUDA for a subprocess: torch reports one GPU of the given name and capability (nothing runs on it).
FAKE_CUDA = """
import torch
class _Props:
    name = {name!r}
    total_memory = 16 * 2**30
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
torch.cuda.get_device_capability = lambda device=None: {capability!r}
torch.cuda.get_device_name = lambda device=None: {name!r}
torch.cuda.get_device_properties = lambda device=None: _Props()
"""
# A stand-in Unsloth: records which of the libraries it patches were imported before it, then ends the process
# (what follows its import is not under test here).
FAKE_UNSLOTH = """
import json, os, sys
with open(os.environ["FAKE_UNSLOTH_LOG"], "w") as log:
    json.dump({"imported_before": sorted(m for m in ("transformers", "trl", "peft") if m in sys.modules)}, log)
sys.exit(0)
"""


def fake_gpu(monkeypatch, name: str, capability: tuple[int, int]) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    # The default of is_bf16_supported counts emulation and says True on a T4: labkit must not ask it.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


@pytest.fixture()
def fake_unsloth(tmp_path, monkeypatch):
    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text(FAKE_UNSLOTH, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("gpu, capability, dtype", [
    ("Tesla T4", (7, 5), "float16"), ("Tesla V100-SXM2-16GB", (7, 0), "float16"),
    ("NVIDIA A100-SXM4-40GB", (8, 0), "bfloat16"), ("NVIDIA L4", (8, 9), "bfloat16"),
    ("NVIDIA H200", (9, 0), "bfloat16")])
def test_auto_dtype_is_bf16_only_where_the_gpu_has_it_natively(monkeypatch, gpu, capability, dtype):
    fake_gpu(monkeypatch, gpu, capability)
    chosen, why = choose_dtype("auto", "cuda")
    assert chosen == dtype and resolve_dtype("auto", "cuda") == dtype
    assert gpu in why and f"compute capability {capability[0]}.{capability[1]}" in why
    assert ("loss scaling" in why) == (dtype == "float16")


def test_other_devices_and_explicit_dtypes(monkeypatch):
    assert choose_dtype("auto", "cpu")[0] == "float32" and choose_dtype("auto", "mps")[0] == "float32"
    with pytest.raises(ConfigError, match="model.dtype=float16 cannot train on the CPU"):
        choose_dtype("float16", "cpu")
    fake_gpu(monkeypatch, "Tesla T4", (7, 5))
    chosen, why = choose_dtype("bfloat16", "cuda")
    assert chosen == "bfloat16" and "emulated" in why and "auto picks fp16" in why


def test_the_loaded_model_line_says_the_dtype_and_why():
    from labkit.train.loading import LoadedModel

    loaded = LoadedModel(None, None, "unsloth", "float16", "cuda", True, None,
                         "auto: Tesla T4 has no native bf16 (compute capability 7.5 < 8.0), so fp16 with dynamic "
                         "loss scaling")
    assert loaded.describe() == ("labkit: Unsloth, fp16 (auto: Tesla T4 has no native bf16 (compute capability 7.5 "
                                 "< 8.0), so fp16 with dynamic loss scaling), 4-bit nf4 (QLoRA), cuda")


def test_backend_choice(fake_unsloth, monkeypatch):
    auto, unsloth, plain = (ModelConfig(backend=b) for b in ("auto", "unsloth", "transformers"))
    assert choose_backend(auto, "cuda") == "unsloth" and choose_backend(unsloth, "cuda") == "unsloth"
    assert choose_backend(auto, "cpu") == "transformers" and choose_backend(plain, "cuda") == "transformers"
    with pytest.raises(ConfigError, match="model.backend=unsloth needs a CUDA GPU"):
        choose_backend(unsloth, "cpu")
    monkeypatch.setattr("labkit.train.loading.unsloth_available", lambda: False)
    assert choose_backend(auto, "cuda") == "transformers"
    with pytest.raises(ConfigError, match="Unsloth is not installed"):
        choose_backend(unsloth, "cuda")


def _run_with_fake_gpu(code: str, fake_unsloth: Path, log: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_unsloth), str(REPO)]),
           "FAKE_UNSLOTH_LOG": str(log)}
    script = FAKE_CUDA.format(name="Tesla T4", capability=(7, 5)) + code
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("entry", ["notebook", "cli"])
def test_unsloth_is_imported_before_transformers_on_both_entry_points(fake_unsloth, tmp_path, entry):
    # smoke inherits model.backend=transformers from cpu-demo; the colab presets use auto
    code = {"notebook": "from labkit.notebook import start\nstart('smoke', 'r', ['model.backend=auto'])\n",
            "cli": "from labkit.cli import main\n"
                   "main(['prepare', '--preset', 'smoke', '--run', 'r', '--set', 'model.backend=auto'])\n"}[entry]
    log = tmp_path / "unsloth.json"
    done = _run_with_fake_gpu(code, fake_unsloth, log)
    assert done.returncode == 0, done.stderr[-2000:]
    assert log.exists(), f"{entry}: Unsloth was not imported on a CUDA machine that has it\n{done.stdout[-2000:]}"
    assert json.loads(log.read_text())["imported_before"] == []


def test_no_unsloth_import_with_the_transformers_backend(fake_unsloth, tmp_path):
    log = tmp_path / "unsloth.json"
    done = _run_with_fake_gpu("from labkit.notebook import start\n"
                              "start('smoke', 'r', ['model.backend=transformers'])\n", fake_unsloth, log)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not log.exists() and "capability=7.5" in done.stdout and "bf16=False" in done.stdout
