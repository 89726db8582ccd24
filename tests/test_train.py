"""SFT training on the tiny random Llama: LoRA settings, the mask, guards, logs and gradient checkpointing."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.train.callbacks import TrainingDiverged
from labkit.config import ConfigError
from labkit.train.loading import load_for_training
from labkit.train.lora import count_trainable, resolve_target_modules
from labkit.train.trainer import build_trainer, evaluate_loss, run_training, tokenize_rows
from train_support import prepared_run, smoke_config


# ------------------------------------------------------------------ LoRA settings reach PEFT

def test_resolved_lora_settings_reach_peft():
    cfg = smoke_config({"lora.r": 8, "lora.alpha": 4, "lora.target_modules": "attention",
                                "lora.use_rslora": True, "lora.use_dora": True, "lora.dropout": 0.1})
    loaded = load_for_training(cfg, verbose=False)
    peft_cfg = loaded.model.peft_config["default"]
    assert (peft_cfg.r, peft_cfg.lora_alpha, peft_cfg.lora_dropout) == (8, 4, 0.1)
    assert peft_cfg.use_rslora and peft_cfg.use_dora
    assert set(peft_cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    q_proj = loaded.model.base_model.model.model.layers[0].self_attn.q_proj
    assert q_proj.scaling["default"] == pytest.approx(4 / math.sqrt(8))  # rsLoRA: alpha / sqrt(r)
    assert "default" in q_proj.lora_magnitude_vector  # DoRA
    wrapped = {name.rsplit(".", 1)[-1] for name, m in loaded.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj"}
    # 2 layers x (q, o: 64x64; k, v: 64x32) with r=8 A/B, plus DoRA magnitudes (one per output feature)
    lora = 2 * (2 * 8 * (64 + 64) + 2 * 8 * (64 + 32))
    dora = 2 * (64 + 32 + 32 + 64)
    assert loaded.params.trainable == lora + dora == count_trainable(loaded.model).trainable


def test_named_target_sets_and_bad_names(tiny_model):
    assert resolve_target_modules("mlp", tiny_model) == ["gate_proj", "up_proj", "down_proj"]
    assert len(resolve_target_modules("all-linear", tiny_model)) == 7
    assert resolve_target_modules(["q_proj", "v_proj"], tiny_model) == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="no linear layer named query"):
        resolve_target_modules(["query"], tiny_model)


def test_4bit_on_cpu_is_a_clear_error():
    cfg = smoke_config({"model.load_in_4bit": True, "model.device": "cpu"})
    with pytest.raises(ConfigError, match="model.load_in_4bit"):
        load_for_training(cfg)


# ------------------------------------------------------------------ the trainer trains on exactly labkit's mask

def test_labels_are_exactly_the_assistant_mask():
    from labkit.data import load_prepared, tokenize_conversation

    cfg, run = prepared_run("mask", {"data.packing": False}, n_train=8)  # padded batches: one row per example
    loaded = load_for_training(cfg, verbose=False)
    rows, _ = tokenize_rows(load_prepared(run, "train"), loaded.tokenizer, cfg.data.max_seq_length)
    trainer = build_trainer(cfg, run, loaded, rows, [])
    batch = next(iter(trainer.get_train_dataloader()))
    want = {tuple(r["input_ids"]): r["assistant_masks"] for r in rows}
    for ids, labels, attention in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n = int(attention.sum())
        mask = want[tuple(ids[:n].tolist())]
        assert [int(label != -100) for label in labels[:n]] == mask
        assert (labels[n:] == -100).all()
    # the end-of-turn token <|im_end|> (id 2) closes every trained span
    row = load_prepared(run, "train")[0]
    encoded = tokenize_conversation(loaded.tokenizer, row["messages"])
    trained = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m]
    assert trained[-1] == loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")


# ------------------------------------------------------------------ guards

def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint():
    # lr=1e30: step 1 is warm-up (lr 0), step 2's update blows the adapter up, step 3's loss is non-finite.
    cfg, run = prepared_run("nan", {"train.lr": 1e30, "train.max_steps": 6, "train.save_steps": 1,
                                    "train.save_total_limit": 3, "train.warmup_ratio": 0.1})
    with pytest.raises(TrainingDiverged, match=r"loss became nan.*last good checkpoint is .*checkpoint-1\b") as err:
        run_training(cfg, run)
    assert "train.lr" in str(err.value)
    assert run.path("checkpoints", "checkpoint-1").is_dir()
    assert run.path("checkpoints", "nonfinite-checkpoint-2").is_dir()
    assert not run.path("checkpoints", "checkpoint-2").exists()
    assert not run.path("adapter").exists() and not run.has("train_summary")


def test_oom_message_names_concrete_settings():
    from labkit.train.trainer import oom_advice

    text = oom_advice(smoke_config({"train.batch_size": 8}))
    for setting in ("train.batch_size=4", "train.grad_accum=2", "data.max_seq_length=128", "model.load_in_4bit=true",
                    "train.gradient_checkpointing=true"):
        assert setting in text


# ------------------------------------------------------------------ logs, TensorBoard, summary

def test_tensorboard_and_jsonl_hold_the_logged_scalars():
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, run = prepared_run("tb", {"train.max_steps": 4, "train.eval_steps": 2, "train.save_steps": 4})
    summary = run_training(cfg, run)

    events = EventAccumulator(str(run.path("tb"))).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/lr", "train/grad_norm", "speed/tokens_per_s", "speed/trained_tokens_per_s",
                "speed/step_time_s", "memory/rss_mb", "memory/peak_rss_mb", "eval/loss"):
        assert tag in tags, tag
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("eval/loss")] == [2, 4]
    from labkit.train.callbacks import read_log

    records = read_log(run.path("logs", "train_log.jsonl"))
    train = [r for r in records if r["kind"] == "train"]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["loss"] for r in train])
    assert all(r["trained_tokens"] > 0 and r["tokens"] > r["trained_tokens"] for r in train)
    # the summary adds up the log and compares with the base model on the same validation rows
    assert summary["trained_tokens"] == sum(r["trained_tokens"] for r in train)
    assert summary["steps"] == 4 and summary["empty_batches"] == 0
    assert math.isfinite(summary["base_eval_loss"]) and math.isfinite(summary["final_eval_loss"])
    assert summary["final_eval_loss"] != summary["base_eval_loss"]
    assert (run.path("adapter") / "adapter_model.safetensors").exists()
    assert (run.path("adapter") / "tokenizer.json").exists()
    assert run.load("train_summary")["adapter_path"] == str(run.path("adapter"))
    # resuming those checkpoints with another learning rate would make a run that is neither: refused
    cfg.train.lr = 5e-4
    with pytest.raises(ConfigError, match=r"train.lr: 0.001 -> 0.0005"):
        run_training(cfg, run, resume=True)


def test_evaluate_loss_is_the_masked_token_mean(tiny_model, smol_tokenizer):
    from labkit.data import ensure_chat_template, load_prepared

    _, run = prepared_run("evalloss", n_train=4, n_val=3)
    rows = load_prepared(run, "validation")
    ensure_chat_template(smol_tokenizer, "auto")
    rows_ids, _ = tokenize_rows(rows, smol_tokenizer, None)
    total = count = 0.0
    with torch.no_grad():  # one row at a time, by hand
        for r in rows_ids:
            ids = torch.tensor([r["input_ids"]])
            logp = torch.log_softmax(tiny_model(input_ids=ids).logits[0, :-1].float(), -1)
            for pos, (target, m) in enumerate(zip(r["input_ids"][1:], r["assistant_masks"][1:])):
                if m:
                    total -= float(logp[pos, target])
                    count += 1
    assert evaluate_loss(tiny_model, smol_tokenizer, rows, batch_size=2) == pytest.approx(total / count, rel=1e-4)


# ------------------------------------------------------------------ gradient checkpointing and packing

def test_gradient_checkpointing_on_and_off_give_the_same_training():
    results = {}
    for checkpointing in (False, True):
        cfg, run = prepared_run(f"gc-{checkpointing}", {"train.max_steps": 2, "train.save_steps": 0,
                                                        "train.gradient_checkpointing": checkpointing}, n_train=16)
        summary = run_training(cfg, run)
        assert summary["gradient_checkpointing"] is checkpointing
        results[checkpointing] = summary
    # recomputing activations changes memory, not the maths
    assert results[True]["final_train_loss"] == pytest.approx(results[False]["final_train_loss"], rel=1e-5)
    assert results[True]["final_eval_loss"] == pytest.approx(results[False]["final_eval_loss"], rel=1e-5)


def test_packing_keeps_attention_inside_each_example(tiny_model):
    cfg, run = prepared_run("packed", {"train.max_steps": 2, "train.save_steps": 0, "data.packing": True,
                                       "data.max_seq_length": 128})
    loaded = load_for_training(cfg, verbose=False)
    from labkit.data import load_prepared

    rows, _ = tokenize_rows(load_prepared(run, "train"), loaded.tokenizer, 128)
    batch = next(iter(build_trainer(cfg, run, loaded, rows, []).get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # padding-free: one flat row
    ids, positions = batch["input_ids"], batch["position_ids"]
    starts = (positions[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    assert len(starts) >= 3  # at least two conversations share the row
    with torch.no_grad():
        # (use_cache=False as in training: with a cache, transformers does not look for packed sequences)
        packed = tiny_model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]
        for a, b in zip(starts, starts[1:]):
            alone = tiny_model(input_ids=ids[:, a:b]).logits[0]
            torch.testing.assert_close(packed[a:b], alone, rtol=1e-4, atol=1e-4)
    summary = run_training(cfg, run)
    assert summary["packing"] and summary["steps"] == 2


# ------------------------------------------------------------------ padded or padding-free batches under Unsloth

def test_unsloth_pads_only_where_padding_wastes_almost_nothing():
    from types import SimpleNamespace

    from labkit.train.trainer import padding_is_free

    unsloth = SimpleNamespace(backend="unsloth")
    unpacked = smoke_config({"data.packing": False})
    rows = lambda *lengths: [{"input_ids": [1] * n} for n in lengths]  # noqa: E731
    assert padding_is_free(unpacked, unsloth, rows(2048, 2048, 2048), micro_batch=4)
    assert padding_is_free(unpacked, unsloth, rows(2000, 2048), micro_batch=4)        # at most 2.3% padding
    assert not padding_is_free(unpacked, unsloth, rows(300, 2048), micro_batch=4)     # Unsloth decides
    assert padding_is_free(unpacked, unsloth, rows(300, 2048), micro_batch=1)         # one row: no padding
    # Packed rows are padding-free by construction; transformers keeps TRL's default (padded).
    assert not padding_is_free(smoke_config({"data.packing": True}), unsloth, rows(2048, 2048), micro_batch=4)
    assert not padding_is_free(unpacked, SimpleNamespace(backend="transformers"), rows(2048, 2048), micro_batch=4)

