"""``labkit doctor``: is this machine ready for labkit? One line a check: ``ok``, or ``warn`` with the fix.

Checks Python and the installed libraries against the ranges labkit declares (its own package metadata, i.e.
pyproject.toml), the GPU (name, native bf16: a T4 trains in fp16), free GPU memory, RAM and disk, whether
Unsloth and bitsandbytes are importable on CUDA, and whether a Hugging Face token is set (never its value).
A foundation module: it imports no stage.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

TESTED_PYTHON = SpecifierSet(">=3.11,<3.14")   # the lock (3.11) and Colab (3.13); pyproject's requires-python
MIN_FREE_RAM_GIB = 4.0
MIN_FREE_DISK_GIB = 10.0
MIN_FREE_VRAM_GIB = 6.0   # the colab presets' estimate (README: Presets)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'warn'}  {self.name}: {self.detail}" + ("" if self.ok else f" -> {self.fix}")


def check_python(version: str | None = None) -> Check:
    version = version or platform.python_version()
    ok = version in TESTED_PYTHON
    return Check("python", ok, f"{version} (tested: {TESTED_PYTHON})",
                 "" if ok else "use Python 3.11, 3.12 or 3.13")


def declared_requirements(dist: str = "labkit") -> list[Requirement]:
    """labkit's core requirements as installed (extras' requirements are left out)."""
    try:
        lines = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [r for r in map(Requirement, lines) if not (r.marker and "extra" in str(r.marker))]


def check_libraries(requirements: list[Requirement] | None = None) -> list[Check]:
    checks = []
    for req in declared_requirements() if requirements is None else requirements:
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(req.name, False, "not installed", f'pip install "{req}"'))
            continue
        ok = req.specifier.contains(version, prereleases=True)
        checks.append(Check(req.name, ok, f"{version} (wants {req.specifier or 'any'})",
                            "" if ok else f'pip install "{req}"'))
    return checks


def gpu_checks(cuda: dict | None) -> list[Check]:
    """From :func:`cuda_facts` (None: no CUDA device)."""
    if cuda is None:
        return [Check("gpu", True, "none: CPU presets only (cpu-demo, smoke)"
                      + ("; on Colab pick Runtime > Change runtime type > GPU" if _colab() else ""))]
    from labkit.env import native_bf16

    major, minor = cuda["capability"]
    dtype = ("bf16 (native)" if native_bf16((major, minor)) else
             f"fp16: compute capability {major}.{minor} has no native bf16 (e.g. a T4), so labkit trains in fp16")
    free = cuda["free_gib"]
    return [Check("gpu", True, f"{cuda['name']}, {cuda['total_gib']:.1f} GiB, {dtype}"),
            Check("gpu memory", free >= MIN_FREE_VRAM_GIB, f"{free:.1f} GiB free",
                  f"free GPU memory (restart the runtime) or use a 4-bit preset; the colab presets want ~"
                  f"{MIN_FREE_VRAM_GIB:.0f} GiB")]


def cuda_facts() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info(0)
    return {"name": props.name, "capability": (props.major, props.minor), "free_gib": free / 2**30,
            "total_gib": total / 2**30}


def check_importable(module: str, cuda: bool) -> Check:
    """On CUDA the module is imported in a child process (Unsloth patches transformers when imported)."""
    if importlib.util.find_spec(module) is None:
        return Check(module, not cuda, "not installed" + ("" if cuda else " (only used on CUDA)"),
                     'pip install "labkit[gpu]"')
    if not cuda:
        return Check(module, True, "installed (not imported: no CUDA device)")
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return Check(module, done.returncode == 0, "imports" if done.returncode == 0 else f"import fails: {last}",
                 'pip install --force-reinstall "labkit[gpu]"; on Colab restart the runtime once')


def resource_checks(folder: Path) -> list[Check]:
    import psutil

    ram = psutil.virtual_memory().available / 2**30
    folder = next(p for p in (folder, *folder.parents) if p.exists())
    disk = shutil.disk_usage(folder).free / 2**30
    return [Check("ram", ram >= MIN_FREE_RAM_GIB, f"{ram:.1f} GiB available",
                  "close other programs; the cpu-demo preset peaks at 3.7 GB"),
            Check("disk", disk >= MIN_FREE_DISK_GIB, f"{disk:.1f} GiB free at {folder}",
                  "free disk space or point LABKIT_RUNS at a larger disk")]


def check_hf_token() -> Check:
    """Whether a Hugging Face token is set; its value is never read into the result."""
    named = next((k for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") if os.environ.get(k)), None)
    if named is None:
        from huggingface_hub import constants

        named = "token file" if Path(constants.HF_TOKEN_PATH).exists() else None
    return Check("hf token", named is not None, f"set ({named})" if named else "not set",
                 "" if named else "only needed for gated hub models (Llama 3.2): set HF_TOKEN, or Colab's secret "
                                  "HF_TOKEN")


def _colab() -> bool:
    from labkit.env import in_colab

    return in_colab()


def run_checks(cuda: dict | None = None, probe_cuda: bool = True) -> list[Check]:
    from labkit.runs import runs_root

    if probe_cuda:
        cuda = cuda_facts()
    checks = [check_python(), *check_libraries(), *gpu_checks(cuda)]
    checks += [check_importable("unsloth", cuda is not None), check_importable("bitsandbytes", cuda is not None)]
    return checks + resource_checks(runs_root()) + [check_hf_token()]


def report(checks: list[Check], as_json: bool = False) -> list[dict] | str:
    if as_json:
        return [asdict(c) for c in checks]
    warnings = sum(not c.ok for c in checks)
    return "\n".join([c.line() for c in checks] + [f"{len(checks)} checks, {warnings} warning(s)"])
