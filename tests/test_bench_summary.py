"""The GPU training bench's arithmetic, on fabricated samples (the bench itself needs a GPU)."""

from __future__ import annotations

from argparse import Namespace

import pytest

from benchmarks.gpu_train import sync_steps


def test_the_clock_waits_at_the_ends_of_the_timed_window_only():
    args = Namespace(warmup=5, steps=20)
    assert sync_steps(args) == {5, 25}
    assert sync_steps(Namespace(warmup=0, steps=3)) == {1, 3}
    assert sync_steps(args, every_step=True) is None


def test_clock_samples_are_parsed_and_averaged_over_a_timed_window(tmp_path):
    from datetime import datetime

    from benchmarks import gpu_clocks

    start = datetime(2026, 12, 1, 11, 0, 0).timestamp()
    lines = ["timestamp, clocks.sm [MHz], power.draw [W], temperature.gpu, utilization.gpu [%]"]   # a header
    for i, mhz in enumerate([1980, 1600, 1800, 1980]):
        stamp = datetime.fromtimestamp(start + i).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
        lines.append(f"{stamp}, {mhz}, {600 + i}, 40, {100 if i < 3 else 0}")
    lines.append("2026/12/01 11:00:09.000, [N/A], 1, 2")   # cut off / not available
    path = tmp_path / "clocks.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    samples = gpu_clocks.read_samples(path)
    assert [s["sm_mhz"] for s in samples] == [1980, 1600, 1800, 1980]
    means = gpu_clocks.window_means(samples, [start + 0.5, start + 2.5])   # the 2nd and 3rd sample only
    assert means == {"samples": 2, "sm_mhz": 1700, "power_w": 601.5, "temp_c": 40, "util_pct": 100}
    assert gpu_clocks.window_means(samples, [start + 10, start + 11]) == {}
    result = gpu_clocks.add_clocks({"s_per_step": 0.15, "window_unix": [start + 0.5, start + 2.5]}, samples)
    assert result["mcycles_per_step"] == pytest.approx(255.0)   # 1700 MHz x 0.15 s
    assert gpu_clocks.read_samples(None) == [] and gpu_clocks.read_samples(tmp_path / "missing.csv") == []


def test_host_usage_is_per_timed_step_and_counts_moves_between_cpus():
    from types import SimpleNamespace

    from benchmarks.gpu_train import host_usage

    def usage(cpu_s, faults, voluntary, involuntary):
        return SimpleNamespace(ru_utime=cpu_s, ru_stime=0.0, ru_minflt=faults, ru_nvcsw=voluntary, ru_nivcsw=involuntary)

    samples = [(usage(1.0, 100, 5, 1), 3), (usage(1.1, 150, 6, 1), 3), (usage(1.3, 300, 9, 4), 7),
               (usage(1.4, 400, 9, 5), 3)]
    out = host_usage(samples, steps=3)
    assert out["host_cpu_s_per_step"] == pytest.approx(0.4 / 3)
    assert out["minor_faults_per_step"] == pytest.approx(100) and out["voluntary_switches_per_step"] == pytest.approx(4 / 3)
    assert out["involuntary_switches_per_step"] == pytest.approx(4 / 3)
    assert out["cpus"] == [3, 7] and out["cpu_moves"] == 2


def test_the_labkit_unsloth_case_imports_unsloth_before_transformers(tmp_path):
    """Unsloth patches transformers / TRL when imported and warns that it runs slower otherwise; a variant switch
    that imported labkit.train.callbacks (hence transformers) first slipped into session 6's table run."""
    import subprocess
    import sys

    fake = tmp_path / "unsloth"
    fake.mkdir()
    (fake / "__init__.py").write_text("import sys\nsys.exit(3 if 'transformers' in sys.modules else 0)\n")
    code = ("from benchmarks import gpu_train\n"
            "gpu_train.case_labkit(None, gpu_train.case_for('labkit-unsloth-bf16:log1'))\n")
    done = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_host_usage_reports_steal_and_the_training_threads_run_queue_wait():
    from types import SimpleNamespace

    from benchmarks.gpu_train import host_usage, scheduler_sample

    rusage = SimpleNamespace(ru_utime=1.0, ru_stime=0.0, ru_minflt=0, ru_nvcsw=0, ru_nivcsw=0)
    start = {"steal": 10, "jiffies": 1000, "on_cpu_ns": 0, "wait_ns": 5_000_000}
    end = {"steal": 30, "jiffies": 1400, "on_cpu_ns": 300_000_000, "wait_ns": 11_000_000}
    out = host_usage([(rusage, 1, start), (rusage, 1, end)], steps=2)
    assert out["steal_pct"] == pytest.approx(5.0)
    assert out["thread_on_cpu_ms_per_step"] == pytest.approx(150.0)
    assert out["thread_wait_ms_per_step"] == pytest.approx(3.0)
    assert "steal_pct" not in host_usage([(rusage, 1), (rusage, 1)], steps=2)   # no scheduler samples
    sample = scheduler_sample()   # this Linux machine's own counters
    assert set(sample) == {"steal", "jiffies", "on_cpu_ns", "wait_ns"} and sample["jiffies"] > 0
