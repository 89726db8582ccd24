"""labkit installed from its wheel (as `pip install git+...` on Colab does) finds the project's datasets: from an
empty directory, `labkit prepare --preset smoke` and the `demo` evaluation run on the tiny model.

The wheel goes into a fresh virtualenv with --no-deps; the shared environment's packages (torch, transformers, ...)
are reached through a .pth file instead of being installed again. Slow-ish: two CLI runs of the tiny model."""

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp), str(REPO)], check=True, capture_output=True)
    return next(tmp.glob("labkit-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next(venv.glob("lib/python*/site-packages"))
    (purelib / "shared-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --ignore-installed: the shared environment's labkit (seen through the .pth) is neither reused nor touched
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", "--ignore-installed", str(wheel)], check=True, capture_output=True)
    assert (purelib / "labkit" / "_data").is_dir()
    return venv


def _labkit(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_RUNS", "LABKIT_REPORTS")}
    env["LABKIT_HOME"] = str(cwd / "home")
    return subprocess.run([str(venv / "bin" / "labkit"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_wheel_carries_the_datasets(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = sorted(p.relative_to(REPO / "data").as_posix() for p in (REPO / "data").rglob("*.jsonl"))
    assert len(shipped) >= 9
    assert [f for f in shipped if f"labkit/_data/{f}" not in names] == []


def test_prepare_and_demo_eval_from_an_empty_directory(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import labkit.config as c; print(c.__file__); print(c.project_data_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    module, data = where.stdout.split()
    assert module.startswith(str(installed)) and data == str(Path(module).parent / "_data")
    prepared = _labkit(installed, tmp_path, "prepare", "--preset", "smoke", "--run", "w")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "project:general" in prepared.stdout
    evaluated = _labkit(installed, tmp_path, "eval", "--preset", "smoke", "--run", "w")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert (tmp_path / "home" / "runs" / "w" / "eval").is_dir()
