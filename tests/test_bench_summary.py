"""The GPU benches' arithmetic, on fabricated segment results (the benches themselves need a GPU)."""

from __future__ import annotations

import re
from argparse import Namespace

import pytest

from labkit.bench.gpu_overhead import summarise, table
from labkit.bench.gpu_train import sync_steps


def _segment(name: str, tokens_per_s: float) -> dict:
    return {"segment": name, "tokens_per_s": tokens_per_s, "s_per_step": 8192 / tokens_per_s}


def test_each_segment_is_compared_with_the_nearest_reference_of_its_timing():
    results = [_segment(*pair) for pair in [
        ("bare", 100.0), ("labkit", 90.0), ("bare:amp", 97.0), ("bare", 80.0),
        ("bare:stepsync", 50.0), ("labkit:stepsync", 45.0), ("bare", 60.0), ("bare:stepsync", 70.0)]]
    rows = {(r["segment"], r["index"]): r for r in summarise(results)}
    assert set(rows) == {("labkit", 1), ("bare:amp", 2), ("labkit:stepsync", 5)}
    assert rows["labkit", 1]["bare_tokens_per_s"] == pytest.approx(90.0)          # bare #0 and bare #3
    assert rows["labkit", 1]["overhead"] == pytest.approx(0.0)
    assert rows["bare:amp", 2]["overhead"] == pytest.approx(1 - 97 / 90)         # the same two bare segments
    assert rows["labkit:stepsync", 5]["bare_tokens_per_s"] == pytest.approx(60.0)  # #4 and #7, not the plain #6
    assert rows["labkit:stepsync", 5]["overhead"] == pytest.approx(0.25)


def test_the_mean_overhead_carries_a_bootstrap_interval_from_three_comparisons():
    tokens = [100, 95, 100, 90, 100, 98, 100]
    results = [_segment("bare" if i % 2 == 0 else "labkit", t) for i, t in enumerate(tokens)]
    text = table({"segments": results, "summary": summarise(results)})
    found = re.search(r"labkit: mean overhead 5\.7% \[95% CI ([\d.]+)%, ([\d.]+)%\] over 3 segment\(s\) "
                      r"\(5\.0%, 10\.0%, 2\.0%\)", text)
    assert found, text
    low, high = map(float, found.groups())
    assert 2.0 <= low < 5.7 < high <= 10.0   # a percentile bootstrap of the mean stays inside the values
    two = results[:5]
    assert "[95% CI" not in table({"segments": two, "summary": summarise(two)})


def test_the_clock_waits_at_the_ends_of_the_timed_window_only():
    args = Namespace(warmup=5, steps=20)
    assert sync_steps(args) == {5, 25}
    assert sync_steps(Namespace(warmup=0, steps=3)) == {1, 3}
    assert sync_steps(args, every_step=True) is None
