"""The resource planner (issue 23): each part's arithmetic on a tiny shape, worked out by hand, and the
issue's acceptance commands against what reports/ measured."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.config import ConfigError, load_config
from labkit.train.planner import plan_preset
from labkit.train.planner.predict import flops_per_token, lora_params
from labkit.train.planner.memory import (NF4_BYTES, Setup, activation_parts, evaluation_parts, loss_bytes,
                                   training_parts, weights_bytes)
from labkit.train.planner.specs import ModelShape, get_gpu, shape_from_config

REPO = Path(__file__).resolve().parents[1]
# hidden 8, 2 layers, 2 heads of 4 (q_dim 8), 1 kv head (kv_dim 4), MLP 16, vocab 32, tied
TINY = ModelShape(hidden=8, layers=2, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=32, tied=True)
BASE = Setup(device="cuda", backend="unsloth", dtype="bfloat16", four_bit=False, loss="fused_unsloth",
             checkpointing=True, offload=True, flash_attention=True, micro_batch=2, accum=1, seq=4, eval_batch=2,
             eval_len=4, lora_params=512, lora_dropout=0.0, lora_targets=("q_proj", "k_proj", "v_proj", "o_proj",
                                                                            "gate_proj", "up_proj", "down_proj"),
             optim="adamw_torch")
BENCH = ["data.packing=false", "train.batch_size=4", "train.grad_accum=1", "data.max_seq_length=2048",
         "train.gradient_checkpointing=true"]


def test_parameter_counts_by_hand():
    # per layer q 8x8 + k 8x4 + v 8x4 + o 8x8 + gate, up, down 8x16 = 576; x2 layers; embedding 32x8; 5 norms of 8
    assert TINY.layer_linear_params == 1152
    assert TINY.total_params == 1152 + 256 + 40
    lora = load_config("smoke", ["lora.r=2"]).lora
    # r x (in + out): 2 x (16 + 12 + 12 + 16 + 24 x 3) = 256 a layer
    assert lora_params(lora, TINY) == 512
    attention = load_config("smoke", ["lora.r=2", "lora.target_modules=attention"]).lora
    assert lora_params(attention, TINY) == 2 * 2 * (16 + 12 + 12 + 16)


def test_counts_match_peft_on_the_tiny_model(tiny_model):
    from labkit.train.lora import apply_lora, count_trainable
    from labkit.train.planner.specs import model_shape

    cfg = load_config("smoke")
    shape, _ = model_shape("tiny-random-llama")
    assert shape.total_params == sum(p.numel() for p in tiny_model.parameters())
    assert lora_params(cfg.lora, shape) == count_trainable(apply_lora(tiny_model, cfg.lora)).trainable


def test_training_parts_unsloth_bf16_by_hand():
    parts = training_parts(TINY, BASE)
    tokens = 2 * 4
    assert parts["weights"] == 1448 * 2
    assert parts["lora_weights"] == parts["gradients"] == 512 * 4
    assert parts["optimizer_states"] == 512 * 8
    # one layer: (3 x 8 + 2 x 4 + 4 x 16) x 2 bytes + 4 x 8 x 2 = 256 a token; backward: (2 x 16 + 2 x 8) x 2 = 96
    assert parts["activations_recomputed_layer"] == tokens * (256 + 96)
    assert parts["activations_checkpoints"] == 0      # offloaded: in host RAM instead
    assert activation_parts(TINY, BASE)["offloaded_to_host"] == 2 * tokens * 8 * 2
    assert parts["logits_and_loss"] == 3 * tokens * 8 * 2
    assert sum(parts.values()) == 2896 + 2048 + 2048 + 4096 + 2816 + 384


def test_transformers_checkpointing_and_trl_fused_head_by_hand():
    s = dataclasses.replace(BASE, backend="transformers", loss="fused_trl", offload=False, optim="adamw_8bit")
    parts = training_parts(TINY, s)
    assert parts["activations_checkpoints"] == 2 * 8 * 8 * 2           # layers x tokens x hidden x bf16
    assert parts["optimizer_states"] == 512 * 2                         # 8-bit AdamW: two int8 states
    assert parts["logits_and_loss"] == 8 * 32768 * 4 + 2 * 8 * 8 * 2   # 8 token rows of the fp32 tile + hidden x 2


def test_four_bit_weights_by_hand():
    s = dataclasses.replace(BASE, four_bit=True)
    assert NF4_BYTES == 0.5 + 1 / 64 + 4 / 16384
    assert weights_bytes(TINY, s) == 1152 * NF4_BYTES + 296 * 2     # embeddings and norms stay 16-bit (Unsloth)
    hf = dataclasses.replace(s, backend="transformers")
    assert weights_bytes(TINY, hf) == 1152 * NF4_BYTES + 296 * 4    # upcast to fp32 by prepare_model_for_kbit_training
    assert training_parts(TINY, s)["dequantised_weight"] == 8 * 16 * 2


def test_cpu_full_logits_without_checkpointing_by_hand():
    s = dataclasses.replace(BASE, device="cpu", backend="transformers", dtype="float32", loss="full",
                            checkpointing=False, offload=False, flash_attention=False)
    acts = activation_parts(TINY, s)
    # a layer: (96 values + 2 heads x 4 x 2 score matrices) x 4 bytes + 32 x 4 = 576 a token; backward 192
    assert acts["all_layers"] == 2 * 8 * 576 + 8 * 192
    assert loss_bytes(TINY, s) == 8 * 32 * (4 + 8)                      # logits, log-softmax, gradient in fp32
    assert evaluation_parts(TINY, s)["logits_and_loss"] == 2 * 4 * 32 * 12


def test_cpu_head_at_trained_positions_by_hand():
    """labkit's CPU path (labkit.train.head): logits only where a token carries loss, in training and in
    evaluation (evaluate_loss, and the Trainer's, which asks for the loss only)."""
    s = dataclasses.replace(BASE, device="cpu", backend="transformers", dtype="float32", loss="trained_positions",
                            checkpointing=False, offload=False, flash_attention=False, trained_share=0.25,
                            eval_trained_share=0.5)
    assert loss_bytes(TINY, s) == 8 * 0.25 * 32 * (4 + 8)                # 2 of the 8 tokens a micro-batch
    assert evaluation_parts(TINY, s)["logits_and_loss"] == 2 * 4 * 0.5 * 32 * 12


def test_flops_per_token_by_hand():
    # 4 x (1152 + 256) + recomputation 2 x 1152 + LoRA 6 x 512 + attention 4 x 4 x 8 x 2 / 2 x (3 + 1)
    assert flops_per_token(TINY, BASE, seq=4) == 5632 + 2304 + 3072 + 512


def test_shape_from_config_and_missing_key():
    shape = shape_from_config({"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                               "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
                               "tie_word_embeddings": True})
    assert shape.total_params == 1235814400   # Llama-3.2-1B, as the benchmark counted it
    with pytest.raises(ConfigError, match="vocab_size"):
        shape_from_config({"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1,
                           "intermediate_size": 8})


def test_constants_agree_with_the_export_stage():
    from labkit.export import merge, resources
    from labkit.train.planner.predict import GGUF_BYTES_PER_PARAM, SHARD_BYTES

    assert SHARD_BYTES == merge.DEFAULT_SHARD_BYTES
    assert all(resources.BYTES_PER_PARAM[name] == b for name, b in GGUF_BYTES_PER_PARAM.items())


def _measured(path: str, case: str) -> float:
    return json.loads((REPO / path).read_text())["results"][case]["train_memory"]["max_allocated_gib"]


@pytest.mark.parametrize("extra, case", [([], "labkit-unsloth-bf16"),
                                         (["model.backend=transformers"], "labkit-hf-bf16"),
                                         (["model.load_in_4bit=true"], "labkit-unsloth-qlora")])
def test_1b_on_h200_within_15_percent_of_measured(extra, case, capsys):
    # The preset inherits data.packing=true from cpu-demo: labkit would then train micro-batches of ONE packed row
    # (labkit.train.packed_micro_batches); the benchmark trained 4 rows a micro-batch, so packing is off here.
    assert main(["plan", "--preset", "colab-llama3.2-1b", "--gpu", "H200", *sum((["--set", o] for o in
                 [*BENCH, *extra]), []), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["memory"]["training_step_gib"]
    measured = _measured("reports/gpu/session7/gpu_train_1b.json", case)
    assert abs(predicted / measured - 1) <= 0.15


def test_cpu_demo_peak_rss_within_15_percent(capsys):
    assert main(["plan", "--preset", "cpu-demo", "--gpu", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the cpu-demo reference run of 2026-12-05 (benchmarks/plan_accuracy.py's calibration row): 2,393 MiB
    assert abs(result["ram"]["peak_gib"] / (2393.3 / 1024) - 1) <= 0.15
    assert result["setup"]["micro_batch"] == 1 and result["setup"]["grad_accum"] == 8   # packed, no FlashAttention


def test_small_cpu_run_is_not_over_predicted(capsys):
    """The calibrated remainder grows with the weights: a 3M-parameter model's run is predicted near its measured
    peak (the fixed 1.31 GiB used before predicted it threefold)."""
    assert main(["plan", "--preset", "smoke", "--gpu", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result["ram"]["peak_gib"] / (612.5 / 1024) - 1) <= 0.15   # labkit train --preset smoke, 2026-12-05


def test_3b_qlora_on_t4_says_whether_it_fits_and_why():
    result = plan_preset("colab-llama3.2-3b-qlora", gpu="T4")
    verdict = result["verdict"]
    assert verdict["fits"] is True and result["setup"]["dtype"] == "float16"
    assert "T4 memory" in verdict["why"] and "evaluation" in verdict["why"] and verdict["changes"] == []
    assert verdict["needed_gib"] < get_gpu("T4").memory_gib


def test_3b_bf16_lora_on_t4_does_not_fit_and_proposes_4bit():
    result = plan_preset("colab-llama3.2-3b-qlora", ["model.load_in_4bit=false", "model.dtype=bfloat16"], gpu="T4")
    verdict = result["verdict"]
    assert verdict["fits"] is False and "no bf16" in verdict["why"]
    four_bit = [c for c in verdict["changes"] if c["set"].get("model.load_in_4bit") is True]
    assert four_bit and four_bit[0]["fits"] and four_bit[0]["needed_gib"] < verdict["needed_gib"]


def test_too_big_a_batch_gets_a_smaller_one_with_the_same_global_batch():
    result = plan_preset("colab-llama3.2-1b", ["data.packing=false", "train.batch_size=16"], gpu="T4")
    verdict = result["verdict"]
    assert verdict["fits"] is False
    batch = [c["set"] for c in verdict["changes"] if "train.batch_size" in c["set"]]
    assert batch and batch[0]["train.batch_size"] * batch[0]["train.grad_accum"] == 16 * 4
    assert verdict["changes"][0]["fits"] and verdict["changes"][0]["changes_training"] is False


def test_bad_gpu_and_4bit_on_cpu_fail_with_one_line(capsys):
    assert main(["plan", "--preset", "cpu-demo", "--gpu", "V100"]) == 2
    assert "--gpu 'V100' is unknown" in capsys.readouterr().err
    assert main(["plan", "--preset", "cpu-demo", "--gpu", "cpu", "--set", "model.load_in_4bit=true"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_text_output_names_every_part(capsys):
    assert main(["plan", "--preset", "colab-llama3.2-1b", "--gpu", "L4"]) == 0
    text = capsys.readouterr().out
    for word in ("training step", "evaluation", "peak RAM", "tokens/s", "an epoch", "GGUF", "export RAM", "FITS"):
        assert word in text
    assert "not measured here" in text


def test_benchmark_meets_the_issue_targets():
    """Peak memory within 15% on every labkit row of reports/gpu/ (4 x 2048 r=16, and reports/gpu/planner/'s other
    shapes, which the planner was not calibrated on); tokens/s within 25% on the 4 x 2048 rows the target names."""
    spec = importlib.util.spec_from_file_location("plan_accuracy", REPO / "benchmarks" / "plan_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = {key: row for key, row in bench.gpu_measurements().items() if key[-1].startswith("labkit")}
    assert len(rows) == 14
    for key, row in rows.items():
        peak, tps = bench.predict_gpu(*key)
        assert abs(peak / row["peak"] - 1) <= 0.15, key
        speeds = row["speeds"] or row["old_speeds"]
        if key[1:4] == (4, 2048, 16):
            assert abs(tps / sorted(speeds)[len(speeds) // 2] - 1) <= 0.25, key


def _write_stats(sources: list[str], max_seq_length: int) -> None:
    import os

    from labkit.runs import atomic_write_json

    stats = {"sources": sources, "max_seq_length": max_seq_length, "splits": {
        "train": {"rows": 100, "tokens": {"mean": 200.0, "p90": 300}, "trainable_share": 0.2},
        "validation": {"rows": 10, "tokens": {"mean": 180.0, "p90": 250}, "trainable_share": 0.1}}}
    atomic_write_json(Path(os.environ["LABKIT_RUNS"]) / "r1" / "data" / "stats.json", stats)


def test_time_per_epoch_from_notebook_01_statistics():
    cfg = load_config("cpu-demo")
    _write_stats(list(cfg.data.sources), cfg.data.max_seq_length)
    result = plan_preset("cpu-demo", gpu="cpu", run="r1")
    speed = result["speed"]
    # packed: 100 rows x 200 tokens over steps of 8 rows x 384 tokens = 6.5 -> 7 steps
    assert speed["steps_per_epoch"] == 7 and "notebook 01 statistics" in speed["data_from"]
    assert speed["epoch_h"] == round(7 * speed["step_s"] / 3600, 4)
    assert result["setup"]["eval_padded_length"] == 250
    from labkit.train.planner.predict import setup_for
    from labkit.train.planner.data import run_data
    from labkit.train.planner.specs import model_shape

    shape, _ = model_shape(cfg.model.name)
    setup = setup_for(cfg, "cpu", None, run_data(cfg, "r1"), shape)
    assert (setup.loss, setup.trained_share, setup.eval_trained_share) == ("trained_positions", 0.2, 0.1)


def test_statistics_of_other_data_settings_are_not_used():
    cfg = load_config("cpu-demo")
    _write_stats(list(cfg.data.sources), 128)
    assert "other data settings" in plan_preset("cpu-demo", gpu="cpu", run="r1")["speed"]["data_from"]
