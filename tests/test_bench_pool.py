"""Pooling the overhead bench's in-process comparisons over runs, with the bare-against-bare control."""

from __future__ import annotations

import json

import pytest

from labkit.bench import overhead_pool


def _run(bare: list[float], labkit_overheads: list[float]) -> dict:
    segments = [{"segment": "bare", "tokens_per_s": t} for t in bare]
    summary = [{"segment": "labkit", "overhead": o} for o in labkit_overheads]
    return {"segments": segments, "summary": summary + [{"segment": "labkit:nopin", "overhead": 0.5}]}


def test_bare_against_bare_compares_each_inner_bare_segment_with_its_two_neighbours():
    values = overhead_pool.bare_against_bare(_run([100.0, 90.0, 100.0, 120.0], []))
    assert values == pytest.approx([1 - 90 / 100, 1 - 100 / 105])


def test_the_table_pools_the_named_segment_over_runs(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(_run([100, 100, 100], [0.02, 0.04, 0.06])))
    second.write_text(json.dumps(_run([100, 110, 100, 90], [0.0])))
    overhead_pool.main([str(first), str(second)])
    out = capsys.readouterr().out
    assert f"| {first} | labkit | 3 | 4.0% |" in out
    assert f"| {second} | labkit | 1 | 0.0% | - |" in out   # one value: no interval
    assert "| **all 2 runs** | labkit | 4 | 3.0% |" in out   # labkit:nopin left out
    assert "| **all 2 runs** | bare vs bare | 3 |" in out


def test_an_unreadable_run_is_named(tmp_path, capsys):
    bad = tmp_path / "gpu_overhead.json"
    bad.write_text("{cut off")
    with pytest.raises(SystemExit):
        overhead_pool.main([str(bad)])
    assert f"{bad}: not a readable gpu_overhead.json" in capsys.readouterr().err


def test_skip_first_leaves_out_the_first_labkit_segment_of_any_kind():
    run = {"summary": [{"segment": "labkit:nopin", "overhead": 0.3}, {"segment": "labkit", "overhead": 0.1},
                       {"segment": "labkit", "overhead": 0.2}]}
    assert overhead_pool.labkit_overheads(run, "labkit", skip_first=True) == [0.1, 0.2]
    assert overhead_pool.labkit_overheads(run, "labkit:nopin", skip_first=True) == []
    assert overhead_pool.labkit_overheads(run, "labkit") == [0.1, 0.2]
