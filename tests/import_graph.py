"""labkit's import graph, read with ``ast`` (nothing is imported), and the layering rule it must follow.

Every ``import`` counts, also those inside functions (a lazy import is still a dependency). Stages depend
downward only: data <- train <- infer <- eval <- analysis; export comes after train (its parity probes use
infer's generation helpers); the foundations (top-level modules) import no stage; ``datagen`` writes data/ and
is imported by no stage; ``cli`` sits on top of everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

FOUNDATION = "foundation"
ALLOWED = {
    FOUNDATION: {FOUNDATION},
    "data": {FOUNDATION, "data"},
    "datagen": {FOUNDATION, "data", "datagen"},
    "train": {FOUNDATION, "data", "train"},
    "infer": {FOUNDATION, "data", "train", "infer"},
    "export": {FOUNDATION, "data", "train", "infer", "export"},
    "eval": {FOUNDATION, "data", "train", "infer", "eval"},
    "analysis": {FOUNDATION, "data", "train", "infer", "eval", "analysis"},
}
TOP = {"cli"}   # may import anything


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, package: str, known: set[str]) -> set[str]:
    """The package's own modules that ``path`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        found |= {n for n in names if n == package or n.startswith(package + ".")}
    return {n for n in found if n in known}


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports_of(path, root.name, set(known)) - {name} for name, path in known.items()}


def layer(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 1:
        return FOUNDATION
    if parts[1] in ALLOWED or parts[1] in TOP:
        return parts[1]
    return FOUNDATION   # a top-level module (config, runs, env, models, ...)


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        if layer(source) in TOP:
            continue
        for target in sorted(targets):
            if layer(target) in TOP or layer(target) not in ALLOWED[layer(source)]:
                bad.append(f"{source} ({layer(source)}) imports {target} ({layer(target)})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm), as sorted names."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups
