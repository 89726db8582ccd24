"""The GPU's SM clock, power, temperature and utilisation while a bench runs, averaged over each timed window.

Why the benches need it: a 1B LoRA step of 4 x 2048 tokens keeps an H200 at its 700 W power limit, and the SM clock
then moves between about 1,600 and 1,980 MHz with temperature (session 6, nvidia-smi every second). A loop's tokens/s
moves with it, by more than the 5% that labkit's overhead target allows, for reasons that are not the loop's. SM
cycles per step (mean clock x seconds per step) take most of that out: a step's kernels take a fixed number of
cycles, while time the GPU waits for the host still counts (the clock keeps running). Memory-bound kernels do not
speed up with the clock, so cycles over-correct a little; the benches print both.

nvidia-smi samples the clock (``-lms``); this module starts it, parses its CSV and averages the samples that fall in
a window given in ``time.time()`` seconds (the benches record their windows on that clock).
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
from datetime import datetime
from pathlib import Path

FIELDS = ("sm_mhz", "power_w", "temp_c", "util_pct")
QUERY = "timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu"
TIME_FORMAT = "%Y/%m/%d %H:%M:%S.%f"   # nvidia-smi's timestamp, in the machine's local time


@contextlib.contextmanager
def sampled(path: Path, every_ms: int = 100, gpu: int = 0):
    """Within: nvidia-smi appends a sample of GPU ``gpu`` to ``path`` every ``every_ms``. Yields ``path``, or None
    where there is no nvidia-smi (a CPU run)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        yield None
        return
    command = [exe, f"--id={gpu}", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits", f"--loop-ms={every_ms}"]
    with open(path, "w", encoding="utf-8") as out:
        sampler = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        try:
            yield path
        finally:
            sampler.terminate()
            sampler.wait(timeout=10)


def read_samples(path: Path | None) -> list[dict]:
    """The samples in ``path`` as dicts (``time`` in ``time.time()`` seconds, then ``FIELDS``); lines that do not
    parse (a header, "[N/A]", a line cut off when the sampler stopped) are skipped."""
    if path is None or not Path(path).exists():
        return []
    samples = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 1 + len(FIELDS):
            continue
        try:
            stamp = datetime.strptime(parts[0], TIME_FORMAT).timestamp()
            values = [float(part) for part in parts[1:]]
        except ValueError:
            continue
        samples.append({"time": stamp, **dict(zip(FIELDS, values))})
    return samples


def window_means(samples: list[dict], window: list[float] | None) -> dict:
    """Mean of each field over the samples inside ``window`` ([start, end], ``time.time()`` seconds), and their
    count; empty when none fall inside (no sampler, or a window shorter than the sampling period)."""
    if not window:
        return {}
    inside = [s for s in samples if window[0] <= s["time"] <= window[1]]
    if not inside:
        return {}
    return {"samples": len(inside), **{key: statistics.mean(s[key] for s in inside) for key in FIELDS}}


def add_clocks(result: dict, samples: list[dict]) -> dict:
    """``result`` (a bench case or segment with ``window_unix`` and ``s_per_step``) with the GPU's means over its
    timed window and its SM cycles per step (``mcycles_per_step``, millions), when samples cover it."""
    means = window_means(samples, result.get("window_unix"))
    if means and result.get("s_per_step"):
        result["gpu"] = means
        result["mcycles_per_step"] = means["sm_mhz"] * result["s_per_step"]
    return result
