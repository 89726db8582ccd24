"""Seeded, deterministic hold-out splits, stratified by category (or source) where the rows have several."""

from __future__ import annotations

import random
from collections import defaultdict


def stratum_field(rows: list[dict]) -> str | None:
    """``category`` if rows have more than one category, else ``source`` if several sources, else None."""
    for name in ("category", "source"):
        if len({str(row.get(name)) for row in rows}) > 1:
            return name
    return None


def split_rows(rows: list[dict], fraction: float, seed: int, by: str | None = "auto") -> tuple[list[dict], list[dict]]:
    """Split off ``fraction`` of the rows (per stratum), reproducibly; returns (kept, held_out) in input order.

    Each stratum with at least two rows gives at least one row to the hold-out when ``fraction > 0`` and
    keeps at least one, so every category is represented on both sides.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"split fraction {fraction} must be in [0, 1)")
    field = stratum_field(rows) if by == "auto" else by
    strata: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        strata[str(row.get(field)) if field else ""].append(index)
    held: set[int] = set()
    for name in sorted(strata):
        indices = strata[name]
        count = round(len(indices) * fraction)
        if fraction > 0 and len(indices) >= 2:
            count = min(max(count, 1), len(indices) - 1)
        # A per-stratum generator: adding rows of one category does not reshuffle the others.
        held.update(random.Random(f"{seed}:{name}").sample(indices, count))
    return ([r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held])
