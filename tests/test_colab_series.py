"""The notebook series as Colab runs it (issue 26): each notebook in its own runtime, which here is a fresh papermill
process and kernel with its own working directory outside the repository, its own local disk (``LABKIT_HOME``) and
its own Drive mount point; Colab's environment markers and a stand-in ``google.colab`` whose one Drive all runtimes
see. The first cells must put the run on Drive, so that each notebook finds what the previous one wrote.

labkit comes from its wheel, built from this tree and installed (without dependencies: those come from this
environment) into a folder on the kernels' ``PYTHONPATH``, once the tree has the build step that puts the project's
data into the wheel (``setup.py``, issue 18); before that, from the repository. The model cache of this machine is
linked into every runtime's disk (on Colab each runtime would download the model again)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from colab_standin import MARKERS, mount_calls, write_standin
from labkit.nbrun import notebook_paths

REPO = Path(__file__).resolve().parents[1]
RUN = "colab"
DRIVE_RUN = Path("labkit", "runs", RUN)
FROM_WHEEL = (REPO / "setup.py").exists()  # the build step that ships data/ inside the wheel


def _labkit_from_wheel(root: Path) -> Path:
    """labkit as `pip install` gives it: a wheel built from a copy of this tree, installed into a folder."""
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist",
                                                                  "*.egg-info", ".pytest_cache", "reports"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(root / "wheel"),
                    str(source)], check=True, capture_output=True)
    wheel = next((root / "wheel").glob("labkit-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(root / "site"), str(wheel)],
                   check=True, capture_output=True)
    return root / "site"


def _runtime(root: Path, name: str, standin: Path, labkit_path: Path) -> tuple[Path, dict]:
    """A fresh simulated Colab runtime: working directory, local disk, Drive mount point, environment."""
    from labkit.models import cache_dir

    runtime = root / name
    (runtime / "content").mkdir(parents=True)
    (runtime / "home").mkdir()
    (runtime / "home" / "models").symlink_to(cache_dir(), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "COLAB_", "PYTEST_"))}
    env.update(MARKERS, PYTHONPATH=os.pathsep.join([str(standin), str(labkit_path)]), LABKIT_HOME=str(runtime / "home"),
               LABKIT_DRIVE_MOUNT=str(runtime / "drive"), STANDIN_DRIVE_LOG=str(root / "mounts.log"),
               STANDIN_DRIVE_STORE=str(root / "my-drive"))
    return runtime, env


def _execute(notebook: Path, runtime: Path, env: dict) -> tuple[subprocess.CompletedProcess, Path]:
    source = shutil.copy(notebook, runtime / "content" / notebook.name)
    target = runtime / "content" / f"executed-{notebook.name}"
    done = subprocess.run([sys.executable, "-m", "papermill", source, str(target), "-p", "PRESET", "smoke",
                           "-p", "RUN", RUN, "-k", "python3", "--cwd", str(runtime / "content"),
                           "--no-progress-bar"], env=env, cwd=runtime / "content", capture_output=True, text=True,
                          timeout=900)
    return done, target


def _outputs(path: Path, kind: str) -> list[dict]:
    nb = nbformat.read(path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == kind]


def _printed(path: Path) -> str:
    return "".join(o.get("text", "") for o in _outputs(path, "stream"))


@pytest.mark.notebooks
def test_the_series_runs_on_colab_one_runtime_per_notebook(tmp_path):
    standin = write_standin(tmp_path / "standin")
    labkit_path = _labkit_from_wheel(tmp_path / "install") if FROM_WHEEL else REPO
    (tmp_path / "my-drive").mkdir()
    notebooks = notebook_paths()

    # Notebook 02 opened before 01 has run: one line that names notebook 01 and where labkit looked.
    early, env = _runtime(tmp_path, "runtime-02-early", standin, labkit_path)
    imported = subprocess.run([sys.executable, "-c", "import labkit; print(labkit.__file__)"], env=env,
                              cwd=early / "content", capture_output=True, text=True, check=True).stdout
    assert Path(imported.strip()).is_relative_to(labkit_path), imported
    done, target = _execute(notebooks[1], early, env)
    assert done.returncode != 0
    errors = _outputs(target, "error")
    assert [e["ename"] for e in errors] == ["MissingInput"]
    assert len(errors[0]["traceback"]) == 1 and "notebook 01_data_prep" in errors[0]["traceback"][0]
    assert str(early / "drive" / "MyDrive" / DRIVE_RUN / "data" / "train.jsonl") in errors[0]["evalue"]

    for notebook in notebooks:
        runtime, env = _runtime(tmp_path, f"runtime-{notebook.name[:2]}", standin, labkit_path)
        done, target = _execute(notebook, runtime, env)
        assert done.returncode == 0, f"{notebook.name} failed on the simulated Colab:\n{done.stderr[-3000:]}"
        assert not _outputs(target, "error")
        printed = _printed(target)
        assert f"run:      {runtime / 'drive' / 'MyDrive' / DRIVE_RUN}" in printed, notebook.name
        assert "on Google Drive" in printed, notebook.name
        assert not (runtime / "home" / "runs").exists(), f"{notebook.name} wrote runs to the runtime's disk"

    assert len(mount_calls(tmp_path / "mounts.log")) == 1 + len(notebooks)  # each runtime mounted Drive once
    run_on_drive = tmp_path / "my-drive" / DRIVE_RUN
    for output in ("data/train.jsonl", "adapter/adapter_config.json", "train_summary.json", "eval/summary.json",
                   "inference/side_by_side.jsonl", "report/summary.md"):
        assert (run_on_drive / output).exists(), f"the series left no {output} in the run on Drive"
    assert json.loads((run_on_drive / "eval" / "summary.json").read_text())["models"].keys() >= {"base", "tuned"}
