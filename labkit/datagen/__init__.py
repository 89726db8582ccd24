"""The project's own datasets: written or generated here, seeded and byte-for-byte reproducible.

``python -m labkit.datagen [--out DIR]`` regenerates every file under ``data/`` (see
``data/README.md``, the datasheet).
"""

from __future__ import annotations

from pathlib import Path

DATASETS = ("general", "function_calling", "reading_qa", "arithmetic", "mc_knowledge")


def generate_all(out_dir: Path) -> dict[str, dict[str, int]]:
    """Write every dataset under ``out_dir``; returns the row counts per dataset and split."""
    # Imported here so that importing the package stays cheap.
    from labkit.datagen import arithmetic, function_calling, general, mc_knowledge, reading_qa

    modules = {"general": general, "function_calling": function_calling, "reading_qa": reading_qa,
               "arithmetic": arithmetic, "mc_knowledge": mc_knowledge}
    return {name: modules[name].generate(Path(out_dir)) for name in DATASETS}
