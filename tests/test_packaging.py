"""The install files agree with each other, and stay inside Unsloth 2026.10.9's constraints."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        req = Requirement(line)
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        if pinned:
            out[req.name.lower()] = pinned[0]
    return out


def test_environment_yml_mirrors_pyproject_pins():
    project = _pyproject()["project"]
    pinned = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(line for line in pip_lines if not line.startswith("-"))
    torch_pin = env_pins.pop("torch")
    assert env_pins == pinned
    torch_range = next(Requirement(d) for d in project["dependencies"] if d.startswith("torch"))
    assert Version(torch_pin) in torch_range.specifier


def test_torch_is_a_range_not_a_pin():
    torch = next(Requirement(d) for d in _pyproject()["project"]["dependencies"] if d.startswith("torch"))
    assert not any(s.operator == "==" for s in torch.specifier)


def test_makefile_pins_the_same_torch_as_environment_yml():
    found = re.search(r"^TORCH_PIN \?= (\S+)\s*$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert found, "the Makefile has no 'TORCH_PIN ?= torch==<version>' line"
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_torch = _pins(line for line in pip_lines if not line.startswith("-")).get("torch")
    assert env_torch, "environment.yml pins no torch==<version>"
    assert _pins([found.group(1)]) == {"torch": env_torch}


def test_pins_inside_unsloth_constraints():
    pins = _pins(_pyproject()["project"]["dependencies"])
    assert Version(pins["transformers"]) <= Version("5.17.0")
    assert Version(pins["trl"]) <= Version("1.15.0")
    assert Version(pins["datasets"]) < Version("5")


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()
    assert "make demo" in (REPO / "README.md").read_text()
