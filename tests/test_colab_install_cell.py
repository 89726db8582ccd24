"""The install cell, first code cell of every notebook: on Colab (its environment markers) it runs one pip
command built from labkit/colab_install.py's REPOSITORY; elsewhere, or once labkit is installed, it does nothing.
The command is captured, never run."""

import importlib.util
import subprocess
import sys

import nbformat
import pytest

from labkit import colab_install as colab
from labkit.nbrun import notebook_paths

URL = "https://github.com/example/labkit"
REAL_FIND_SPEC = importlib.util.find_spec


def _cells():
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        yield path.name, next(c for c in nb.cells if c.cell_type == "code").source


def _run_cell(source: str, monkeypatch, env: dict, installed: bool = False) -> list:
    """Execute the cell with fake environment markers; return the commands it would have run."""
    for marker in ("COLAB_RELEASE_TAG", "COLAB_GPU"):
        monkeypatch.delenv(marker, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    real = REAL_FIND_SPEC
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name) if installed else None) if name == "labkit" else real(name, *a))
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append((cmd, kw)))
    exec(compile(source, "<install cell>", "exec"), {})
    return commands


def test_every_notebook_starts_with_the_current_install_cell():
    cells = dict(_cells())
    assert len(cells) == 5
    stale = [name for name, source in cells.items() if source != colab.install_cell()]
    assert stale == [], "run `python -m labkit.colab_install` to rewrite the install cells"


@pytest.mark.parametrize("marker", [{"COLAB_RELEASE_TAG": "release-colab_20260819"}, {"COLAB_GPU": "1"}])
def test_on_colab_each_cell_runs_one_pip_install_from_the_repository(monkeypatch, marker):
    for name, source in _cells():
        commands = _run_cell(source.replace(colab.REPOSITORY, URL), monkeypatch, marker)
        assert commands == [([sys.executable, "-m", "pip", "install", "-q", f"labkit[colab] @ git+{URL}"],
                             {"check": True})], name


def test_outside_colab_or_once_installed_the_cell_does_nothing(monkeypatch):
    for name, source in _cells():
        assert _run_cell(source, monkeypatch, {}) == [], name
        assert _run_cell(source, monkeypatch, {"COLAB_GPU": "1"}, installed=True) == [], name


def test_an_unset_repository_stops_on_colab_with_the_fix(monkeypatch):
    if colab.PLACEHOLDER not in colab.REPOSITORY:
        pytest.skip("REPOSITORY is set")
    name, source = next(_cells())
    with pytest.raises(SystemExit, match="set REPOSITORY in labkit/colab_install.py"):
        _run_cell(source, monkeypatch, {"COLAB_GPU": "1"})


def test_the_colab_extra_brings_gpu_and_export():
    import tomllib

    project = tomllib.loads((notebook_paths()[0].parents[1] / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"][colab.EXTRAS] == ["labkit[gpu,export]"]
