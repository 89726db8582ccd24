"""Lazy re-exports for the stage packages' ``__init__`` (PEP 562 module ``__getattr__``).

Each stage package names the public functions its notebook uses (``from labkit.train import run_training``)
without importing them when the package is imported: importing ``labkit.eval.metrics`` must not pull in the
whole evaluation stage (torch, transformers), and an eager ``__init__`` that imports a module which imports a
sibling through the package would be an import circle.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``exports`` maps a public name to its module (relative)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
