"""The notebooks' install cell: on Colab it installs labkit into Colab's own runtime; elsewhere it does nothing.

The cell cannot import labkit (it is what installs it), so its text is written into every notebook from
:func:`install_cell`, from ONE setting: :data:`REPOSITORY`. After changing it, rewrite the notebooks with
``python -m labkit.colab_install``; tests/test_colab_install_cell.py fails while a notebook's cell differs.

The install keeps Colab's torch, numpy, pandas and notebook kernel stack (tests/test_colab_resolver.py checks
that pip would not replace them), so no runtime restart is needed after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The one place that names where Colab installs labkit from (the README's Colab section points here).
# Set it when the repository is published; until then the cell stops on Colab with a message saying so.
REPOSITORY = "https://github.com/OWNER/labkit"
EXTRAS = "colab"   # pyproject.toml: gpu (Unsloth, bitsandbytes) + export (the GGUF converter)
PLACEHOLDER = "/OWNER/"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
MARK = "# labkit install cell"

CELL = '''{mark} (Colab only; elsewhere it does nothing). It keeps Colab's torch, numpy, pandas and kernel,
# so no restart is needed. The source is set in one place: REPOSITORY in labkit/colab_install.py (see the README).
LABKIT_SOURCE = "git+{repository}"
import importlib.util, os, subprocess, sys
if ("COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ) and not importlib.util.find_spec("labkit"):
    if "{placeholder}" in LABKIT_SOURCE:
        raise SystemExit("LABKIT_SOURCE names no repository yet: set REPOSITORY in labkit/colab_install.py (README: Colab)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"labkit[{extras}] @ {{LABKIT_SOURCE}}"], check=True)'''


def install_cell(repository: str = REPOSITORY) -> str:
    """The source of the install cell, the first code cell of every notebook."""
    return CELL.format(mark=MARK, repository=repository.rstrip("/"), placeholder=PLACEHOLDER, extras=EXTRAS)


def write_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """Put the current install cell first in every numbered notebook (replacing an older one)."""
    changed = []
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = {"cell_type": "code", "execution_count": None, "id": "labkit-install", "metadata": {},
                "outputs": [], "source": install_cell().splitlines(keepends=True)}
        cells = [c for c in nb["cells"] if not "".join(c["source"]).startswith(MARK)]
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        new = cells[:first_code] + [cell] + cells[first_code:]
        if new != nb["cells"]:
            nb["cells"] = new
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    print("\n".join(str(p) for p in write_notebooks()) or "notebooks already carry the current install cell")
    sys.exit(0)
