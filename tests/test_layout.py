"""The stage layout (issue 19): no import circles, no import against the stage order, notebooks import stage
packages, and the packages' public names resolve."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from import_graph import cycles, graph, upward_imports

REPO = Path(__file__).resolve().parents[1]
LABKIT = REPO / "labkit"


def test_labkit_has_no_import_cycle():
    assert cycles(graph(LABKIT)) == []


def test_labkit_imports_follow_the_stage_order():
    assert upward_imports(graph(LABKIT)) == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "labkit"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_planted_cycle_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "", "analysis/__init__.py": "",
        "analysis/a.py": "from labkit.analysis.b import f\n",
        "analysis/b.py": "def f():\n    from labkit.analysis import a\n",   # a lazy import closes the circle
        "analysis/c.py": "import labkit.analysis.a\n",
    })
    assert cycles(graph(root)) == [["labkit.analysis.a", "labkit.analysis.b"]]


def test_a_planted_upward_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "", "config.py": "from labkit.train import trainer\n",
        "train/__init__.py": "", "train/trainer.py": "from labkit.eval.metrics import f\n",
        "eval/__init__.py": "", "eval/metrics.py": "from labkit import config\ndef f(): pass\n",
    })
    assert upward_imports(graph(root)) == [
        "labkit.config (foundation) imports labkit.train.trainer (train)",
        "labkit.train.trainer (train) imports labkit.eval.metrics (eval)",
    ]


def _notebook_imports() -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                found += [(path.name, m) for m in re.findall(r"^\s*from (labkit[\w.]*) import", source, re.M)]
    return found


def test_notebooks_import_stage_packages_and_foundations_only():
    stages = {"labkit.data", "labkit.train", "labkit.infer", "labkit.eval", "labkit.export", "labkit.analysis"}
    foundations = {"labkit.notebook", "labkit.config", "labkit.runs", "labkit.env", "labkit.models", "labkit.doctor"}
    imports = _notebook_imports()
    assert imports, "no labkit import found in the notebooks"
    assert [(nb, m) for nb, m in imports if m not in stages | foundations] == []


@pytest.mark.parametrize("package", ["labkit.train", "labkit.infer", "labkit.eval", "labkit.analysis"])
def test_every_public_name_of_a_stage_package_resolves(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not callable(getattr(module, name, None))]
    assert missing == []


def test_notebook_names_are_public_names_of_their_package():
    for notebook, package in _notebook_imports():
        module = importlib.import_module(package)
        source = (REPO / "notebooks" / notebook).read_text(encoding="utf-8")
        for names in re.findall(rf"from {re.escape(package)} import \(?([\w, \\n]+)", source):
            for name in re.findall(r"\w+", names.replace("\\n", " ")):
                assert hasattr(module, name), f"{notebook}: {package} has no {name}"


def test_no_module_over_400_lines_without_a_reason():
    long = []
    for path in sorted(LABKIT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        docstring = ast_docstring(text)
        if text.count("\n") > 420 and "long on purpose" not in docstring.lower():
            long.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert long == []


def ast_docstring(text: str) -> str:
    import ast

    return ast.get_docstring(ast.parse(text)) or ""


def test_every_stage_command_finds_its_function():
    from labkit.cli import STAGE_COMMANDS

    for command, module, function, _ in STAGE_COMMANDS:
        target = getattr(importlib.import_module(f"labkit.{module}"), function, None)
        assert callable(target), f"labkit {command}: labkit.{module}.{function} not found"
