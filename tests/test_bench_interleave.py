"""The overhead bench's interleaved mode, run on the CPU with a tiny random model (on the GPU it is the measurement
of labkit's overhead against a bare loop; reports/gpu_benchmark.md)."""

from __future__ import annotations

import json
import types

import pytest

from labkit.bench import gpu_overhead


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory, one_thread_module):
    from labkit.models import resolve

    out = tmp_path_factory.mktemp("interleave")
    gpu_overhead.main(["--tiny", "--device", "cpu", "--tokenizer", resolve("smollm2-135m-instruct"),
                       "--out", str(out), "--seq-len", "16", "--batch-size", "2", "--warmup", "2",
                       "--interleave", "3", "--block-steps", "2", "--segments", "labkit,labkit:noamp"])
    return out, json.loads((out / "gpu_overhead.json").read_text())


def test_each_run_alternates_labkit_and_bare_blocks(interleaved):
    _, payload = interleaved
    runs = payload["interleaved"]
    assert [r["segment"] for r in runs] == ["labkit", "labkit:noamp"]
    for run in runs:
        assert len(run["labkit_tokens_per_s"]) == len(run["bare_tokens_per_s"]) == len(run["overheads"]) == 3
        labkit, bare = run["labkit_tokens_per_s"], run["bare_tokens_per_s"]
        assert run["overheads"][0] == pytest.approx(1 - labkit[0] / bare[0])   # only a bare block after it
        assert run["overheads"][1] == pytest.approx(1 - labkit[1] / ((bare[0] + bare[1]) / 2))


def test_every_run_starts_from_the_same_adapter_weights(interleaved):
    """Same rows, same starting weights: on the CPU (deterministic, no autocast in fp32) the two runs log the same
    losses, so on a GPU a difference between two settings is theirs or the GPU's nondeterminism."""
    _, payload = interleaved
    first, second = (r["logged_losses"] for r in payload["interleaved"])
    assert first   # the first step's loss is that of the starting weights
    assert first == second


def test_the_report_has_one_line_per_run_and_the_blocks(interleaved):
    out, _ = interleaved
    text = (out / "gpu_overhead.md").read_text()
    assert "3 blocks of 2 labkit steps, each followed by 2 bare steps" in text
    assert text.count("| labkit:noamp |") == 1
    assert "labkit:noamp, per block" in text


def test_plain_forward_sets_the_autocast_wrapper_aside_and_puts_it_back():
    model = types.SimpleNamespace()
    model._original_forward = "own"
    model.forward = "wrapped"
    with gpu_overhead._plain_forward(model):
        assert model.forward == "own"
    assert model.forward == "wrapped"


def test_interleave_takes_labkit_segments_only():
    with pytest.raises(SystemExit):
        gpu_overhead.parse_args(["--out", "x", "--tokenizer", "t", "--interleave", "2", "--segments", "bare,labkit"])


def test_a_failing_segment_is_reported_and_the_others_still_run(tmp_path, monkeypatch, one_thread_module):
    from labkit.models import resolve

    real = gpu_overhead.labkit_segment

    def segment(args, cfg, loaded, rows, variants, callbacks=()):
        if "nocheck" in variants:
            raise RuntimeError("workers could not start")
        return real(args, cfg, loaded, rows, variants, callbacks)

    monkeypatch.setattr(gpu_overhead, "labkit_segment", segment)
    gpu_overhead.main(["--tiny", "--device", "cpu", "--tokenizer", resolve("smollm2-135m-instruct"), "--out",
                       str(tmp_path), "--seq-len", "16", "--batch-size", "2", "--warmup", "1", "--steps", "2",
                       "--segments", "bare,labkit:nocheck,labkit,bare"])
    payload = json.loads((tmp_path / "gpu_overhead.json").read_text())
    assert [s["segment"] for s in payload["segments"]] == ["bare", "labkit", "bare"]
    assert payload["failed"] == [{"segment": "labkit:nocheck", "index": 1,
                                  "error": "RuntimeError: workers could not start"}]
    assert [s["segment"] for s in payload["summary"]] == ["labkit"]
    assert "segment #1 labkit:nocheck FAILED: RuntimeError: workers could not start" in \
        (tmp_path / "gpu_overhead.md").read_text()


def test_loader_variants_change_only_what_they_name():
    def args():
        return types.SimpleNamespace(dataloader_num_workers=2, dataloader_persistent_workers=True,
                                     dataloader_pin_memory=True)

    untouched, no_workers, no_pin = args(), args(), args()
    gpu_overhead.loader_variants(untouched, ("nocheck",))
    gpu_overhead.loader_variants(no_workers, ("workers0",))
    gpu_overhead.loader_variants(no_pin, ("nopin",))
    assert vars(untouched) == vars(args())
    assert vars(no_workers) == {**vars(args()), "dataloader_num_workers": 0, "dataloader_persistent_workers": False}
    assert vars(no_pin) == {**vars(args()), "dataloader_pin_memory": False}
