"""Pool the in-process overhead comparisons of several ``labkit.bench.gpu_overhead`` runs into one estimate.

    python -m labkit.bench.overhead_pool RUN1/gpu_overhead.json RUN2/gpu_overhead.json ... [--segment labkit]

One run's 6-13 comparisons of labkit against its bare neighbours spread from -10% to +17% on an H200, because the
machine itself has slow stretches that hit either loop (``reports/gpu_benchmark.md``, session 7). This prints, per
run and pooled: the mean overhead of the named segment with labkit's 95% bootstrap interval, and the same statistic
for a control that cannot have any overhead, each bare segment against the mean of the bare segments on either
side of it. If the control spreads as widely as labkit's comparisons, one comparison says little; the pooled mean
and its interval are the estimate.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from labkit.bench import gpu_overhead


def labkit_overheads(payload: dict, segment: str, skip_first: bool = False) -> list[float]:
    """The run's overheads of ``segment`` against its nearest bare segments (gpu_overhead's own summary); with
    ``skip_first`` without the run's first labkit segment of any kind (a sensitivity check: in sessions 6 and 7 the
    first Trainer of each process ran 10-17% slow, with slow stretches in mid-segment, cause not found)."""
    rows = payload.get("summary", [])
    if skip_first:
        rows = rows[1:]
    return [row["overhead"] for row in rows if row["segment"] == segment]


def bare_against_bare(payload: dict) -> list[float]:
    """Each bare segment but the first and last against the mean of the bare segments before and after it, as
    gpu_overhead compares a labkit segment: 1 - tokens/s / neighbours' mean."""
    bare = [s["tokens_per_s"] for s in payload.get("segments", []) if s["segment"] == "bare"]
    return [1 - bare[i] / ((bare[i - 1] + bare[i + 1]) / 2) for i in range(1, len(bare) - 1)]


def describe(values: list[float]) -> str:
    """'n | mean | [95% CI] | median | min to max' in percent."""
    if not values:
        return "0 | - | - | - | -"
    bounds = gpu_overhead.mean_interval(values)   # the interval gpu_overhead's own table gives
    interval = "-" if bounds is None else f"[{100 * bounds[0]:.1f}%, {100 * bounds[1]:.1f}%]"
    return (f"{len(values)} | {100 * statistics.fmean(values):.1f}% | {interval} | "
            f"{100 * statistics.median(values):.1f}% | {100 * min(values):.1f}% to {100 * max(values):.1f}%")


def pool_table(runs: dict[str, dict], segment: str = "labkit", skip_first: bool = False) -> str:
    """One markdown table: per run and pooled, ``segment`` against bare and the bare-against-bare control."""
    lines = ["| run | comparison | n | mean | 95% CI | median | range |",
             "| --- | --- | ---: | ---: | --- | ---: | --- |"]
    pooled: dict[str, list[float]] = {segment: [], "bare vs bare": []}
    for name, payload in runs.items():
        ours = labkit_overheads(payload, segment, skip_first)
        for label, values in ((segment, ours), ("bare vs bare", bare_against_bare(payload))):
            pooled[label] += values
            lines.append(f"| {name} | {label} | {describe(values)} |")
    for label, values in pooled.items():
        lines.append(f"| **all {len(runs)} runs** | {label} | {describe(values)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.bench.overhead_pool", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="gpu_overhead.json files")
    parser.add_argument("--segment", default="labkit", help="the segment name to pool (default: labkit)")
    parser.add_argument("--skip-first", action="store_true",
                        help="leave out each run's first labkit segment (a sensitivity check)")
    args = parser.parse_args(argv)
    runs = {}
    for path in args.runs:
        try:
            runs[str(path)] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            parser.error(f"{path}: not a readable gpu_overhead.json ({err})")
    print(pool_table(runs, args.segment, args.skip_first), end="")


if __name__ == "__main__":
    main()
