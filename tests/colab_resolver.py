"""Emulate `pip install "labkit[colab]"` inside Colab's GPU runtime, from Colab's published `pip freeze`.

Every package of the freeze is held at its version (pip constraints), except the ML stack labkit exists to
bring. pip resolves with Python 3.13 and binary wheels only (`--dry-run --report`, nothing is installed); a held
package that blocks the resolution is freed and counted, one at a time, until pip resolves. Colab's torch builds
(`+cu128`) are on no registry: metadata-only wheels of those exact versions stand in for them.

Run by tests/test_colab_resolver.py; also a script: `python tests/colab_resolver.py [FREEZE] [--extras colab]`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Colab's published freeze (../shared/colab/README.md says where it comes from); LABKIT_COLAB_FREEZE names another.
FREEZE = Path(os.environ.get("LABKIT_COLAB_FREEZE", REPO.parent / "shared" / "colab" / "pip-freeze.gpu.txt"))
# What labkit brings in its own versions (../shared/colab/README.md): never held.
ML_STACK = {"transformers", "trl", "peft", "accelerate", "datasets", "unsloth", "unsloth-zoo", "bitsandbytes",
            "torchao", "xformers", "huggingface-hub", "tokenizers", "safetensors"}
# Replacing these under a running Colab kernel breaks the runtime or forces a restart mid-notebook.
KERNEL_STACK = {"ipykernel", "ipython", "jupyter-client", "jupyter-core", "notebook", "tornado", "traitlets", "pyzmq"}
PROTECTED = KERNEL_STACK | {"numpy", "pandas"}
MAX_OTHER_CHANGES = 3
MAX_ROUNDS = 40


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_protected(name: str) -> bool:
    """The kernel stack, numpy, pandas and Colab's torch builds (torch*, except torchao of the ML stack)."""
    return name in PROTECTED or (name.startswith("torch") and name not in ML_STACK)


def read_freeze(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (lines installed from a URL or a file are skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")) and "==" in line and " @ " not in line:
            name, version = line.split("==", 1)
            out[norm(name)] = version.strip()
    return out


def stand_in_wheel(name: str, version: str, folder: Path) -> Path:
    """A wheel holding only metadata, for a build no registry has (e.g. torch 2.11.0+cu128)."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    files = {f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: labkit-test\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n"}
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def build_labkit_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(folder), str(REPO)], check=True, capture_output=True, text=True)
    return next(folder.glob("labkit-*.whl"))


def sdist_only(stderr: str, held: dict[str, str]) -> str | None:
    """A requirement pip found no wheel for that is not one of Colab's (e.g. rouge-score: an sdist only)."""
    found = re.search(r"satisfies the requirement (\S+)", stderr)
    return found.group(1) if found and norm(re.split(r"[<>=!~\[; ]", found.group(1))[0]) not in held else None


def build_wheel(requirement: str, folder: Path) -> bool:
    """Build a pure-Python sdist into a wheel, as pip on Colab would (pip refuses sdists with --python-version)."""
    return subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), requirement],
                          capture_output=True, text=True).returncode == 0


def blocking_packages(stderr: str, held: dict[str, str]) -> list[str]:
    """Held packages that pip names as the cause of a failed resolution, in the order it names them."""
    names = re.findall(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)", stderr)
    names += re.findall(r"(?:satisfies the requirement|distribution found for) ([A-Za-z0-9_.\-]+)", stderr)
    return list(dict.fromkeys(n for n in map(norm, names) if n in held))


@dataclass
class Outcome:
    freed: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)   # sdist-only requirements built into local wheels
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)   # name -> (colab, after)
    added: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def protected_changes(self) -> list[str]:
        return sorted(n for n in self.changes if is_protected(n))

    @property
    def other_changes(self) -> list[str]:
        """Colab packages outside the ML stack and the protected set that would change (at most 3 allowed)."""
        return sorted(n for n in self.changes if not is_protected(n) and n not in ML_STACK)

    def summary(self) -> str:
        lines = [f"freed to resolve: {', '.join(self.freed) or 'none'}",
                 f"built from sdists: {', '.join(self.built) or 'none'}"]
        lines += [f"changes {n}: {a} -> {b}" + (" (ML stack)" if n in ML_STACK else "")
                  for n, (a, b) in sorted(self.changes.items())]
        lines.append(f"protected packages changed: {', '.join(self.protected_changes) or 'none'}; other Colab "
                     f"packages changed: {len(self.other_changes)} ({', '.join(self.other_changes) or 'none'})")
        lines.append(f"added (not in Colab): {len(self.added)}: "
                     + ", ".join(f"{n}=={v}" for n, v in sorted(self.added.items())))
        return "\n".join(lines + ([f"error: {self.error}"] if self.error else []))


def pip_dry_run(requirement: str, constraints: Path, links: Path, report: Path, python: str = "3.13"):
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--report",
         str(report), "--python-version", python, "--only-binary=:all:", "--find-links", str(links),
         "-c", str(constraints), requirement], capture_output=True, text=True)


def _installs(report: Path) -> dict[str, str]:
    return {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def _failure(done: subprocess.CompletedProcess) -> str:
    return "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                     if line.startswith(("ERROR", "The conflict")) or " requested " in line or " depends on " in line)


def resolve(freeze: Path, workdir: Path, extras: str = "colab") -> Outcome:
    """Hold Colab's packages; free and count the ones that block, one at a time.

    A failing pip resolution backtracks through every version of every free package (tens of minutes), so the
    packages Colab does not have, and the ML stack, are first fixed at the versions pip picks with only the
    protected packages held (a quick, conflict-free resolution). Then each conflict names its blockers at once.
    """
    colab = read_freeze(freeze)
    links = workdir / "links"
    links.mkdir(parents=True, exist_ok=True)
    for name, version in colab.items():
        if "+" in version:
            stand_in_wheel(name, version, links)
    requirement = f"labkit[{extras}] @ {build_labkit_wheel(workdir).as_uri()}"
    outcome, report, constraints = Outcome(), workdir / "report.json", workdir / "held.txt"

    def attempt(held: dict[str, str]) -> subprocess.CompletedProcess:
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(held.items())))
        for _ in range(5):   # requirements pip finds no wheel for (sdists only) are built locally first
            done = pip_dry_run(requirement, constraints, links, report)
            missing = None if done.returncode == 0 else sdist_only(_failure(done), held)
            if not missing or missing in outcome.built or not build_wheel(missing, links):
                return done
            outcome.built.append(missing)
        return done

    protected = {n: v for n, v in colab.items() if is_protected(n)}
    done = attempt(protected)
    if done.returncode != 0:
        outcome.error = "does not resolve even with only the kernel stack, numpy, pandas, torch held:\n" + _failure(done)
        return outcome
    fixed = {n: v for n, v in _installs(report).items() if n != "labkit" and (n not in colab or n in ML_STACK)}
    held = {**{n: v for n, v in colab.items() if n not in ML_STACK}, **fixed}
    for _ in range(MAX_ROUNDS):
        done = attempt(held)
        if done.returncode == 0:
            break
        blockers = blocking_packages(_failure(done), held)
        # free what Colab does not ship first (costs nothing), then Colab's own packages, never the protected
        blockers = sorted((b for b in blockers if not is_protected(b)), key=lambda b: b in colab and b not in fixed)
        if not blockers:
            outcome.error = _failure(done)[-2000:]
            return outcome
        if blockers[0] in colab and blockers[0] not in fixed:
            outcome.freed.append(blockers[0])
        held.pop(blockers[0])
    else:
        outcome.error = f"no resolution after freeing {MAX_ROUNDS} packages"
        return outcome
    for name, version in _installs(report).items():
        if name == "labkit":
            continue
        if name not in colab:
            outcome.added[name] = version
        elif version != colab[name]:
            outcome.changes[name] = (colab[name], version)
    return outcome


def main(argv: list[str]) -> int:
    import tempfile

    args = [a for a in argv if not a.startswith("--")]
    extras = argv[argv.index("--extras") + 1] if "--extras" in argv else "colab"
    args = [a for a in args if a != extras]
    with tempfile.TemporaryDirectory() as tmp:
        outcome = resolve(Path(args[0]) if args else FREEZE, Path(tmp), extras)
    print(outcome.summary())
    return 1 if outcome.error or outcome.protected_changes or len(outcome.other_changes) > MAX_OTHER_CHANGES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
