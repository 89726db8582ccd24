"""The LM head at the trained positions only (labkit.train.head): same loss and gradients as the full head."""

from __future__ import annotations

import pytest
import torch

from labkit.train.head import next_token_targets, trained_positions_loss
from train_support import prepared_run

pytestmark = pytest.mark.usefixtures("one_thread_module")


def _batch(vocab: int, seed: int = 0) -> dict:
    """Three right-padded rows of different lengths, each with its own trained span(s)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 12), generator=g)
    attention = torch.ones_like(ids)
    attention[1, 9:] = 0
    attention[2, 6:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 4:8] = ids[0, 4:8]
    labels[0, 10:] = ids[0, 10:]       # two spans; the last one runs to the row's end
    labels[1, 5:9] = ids[1, 5:9]
    labels[2, 2:6] = ids[2, 2:6]
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _lora(model):
    import peft

    torch.manual_seed(0)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                         init_lora_weights=False))
    return wrapped.train()


def _losses_and_grads(model, batch, num_items):
    trained = [p for p in model.parameters() if p.requires_grad]
    full = model(**batch, use_cache=False, num_items_in_batch=num_items).loss
    full_grads = torch.autograd.grad(full, trained)
    restricted = trained_positions_loss(model, batch, num_items)
    restricted_grads = torch.autograd.grad(restricted, trained)
    return full, restricted, full_grads, restricted_grads


@pytest.mark.parametrize("num_items", [None, torch.tensor(29)])
def test_loss_and_gradients_equal_the_full_head_on_the_tiny_llama(tiny_model, num_items):
    model = _lora(tiny_model)
    batch = _batch(model.config.vocab_size)
    full, restricted, full_grads, restricted_grads = _losses_and_grads(model, batch, num_items)
    assert restricted.item() == pytest.approx(full.item(), rel=1e-5)
    assert full.item() > 1.0  # a random model: the check compares real losses, not zeros
    for a, b in zip(full_grads, restricted_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)
    # num_items_in_batch (the whole accumulated batch's trained tokens) divides the sum, as the model's loss does
    if num_items is not None:
        own = trained_positions_loss(model, batch)
        assert own.item() == pytest.approx(restricted.item() * 29 / 14, rel=1e-5)  # 14 trained targets here


def test_soft_capped_tied_head_of_a_gemma_shaped_model():
    """Gemma: tied embeddings and final-logit soft-capping happen around the head, so they still apply."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                              final_logit_softcapping=0.02, tie_word_embeddings=True)
    model = Gemma3ForCausalLM(config)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    model = _lora(model)
    batch = _batch(300, seed=1)
    full, restricted, full_grads, restricted_grads = _losses_and_grads(model, batch, None)
    assert restricted.item() == pytest.approx(full.item(), rel=1e-5)
    for a, b in zip(full_grads, restricted_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)
    # the soft-capping matters at this scale: without it the loss differs
    model.get_base_model().config.final_logit_softcapping = None
    assert trained_positions_loss(model, batch).item() != pytest.approx(full.item(), rel=1e-3)


def test_targets_follow_the_shift_and_pre_shifted_labels():
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, -100, -100, -100]])
    mask, targets = next_token_targets(labels)
    assert mask.tolist() == [[False, True, True, False, False], [True, False, False, False, False]]
    assert targets.tolist() == [7, 8, 5]
    shifted = torch.tensor([[-100, 7, 8, -100, -100]])
    mask, targets = next_token_targets(None, shifted)
    assert mask.tolist() == [[False, True, True, False, False]] and targets.tolist() == [7, 8]
    with pytest.raises(ValueError, match="needs `labels`"):
        next_token_targets(None)


def test_the_trainer_uses_it_on_cpu_and_matches_the_models_loss():
    """labkit's SFTTrainer on the CPU, packed (padding-free) batches: compute_loss takes the restricted head and
    gives the model's own loss for the same micro-batch."""
    from labkit.data import load_prepared
    from labkit.train.loading import load_for_training
    from labkit.train.trainer import build_trainer, tokenize_rows

    cfg, run = prepared_run("head", {"data.packing": True}, n_train=12)
    loaded = load_for_training(cfg, verbose=False)
    rows, _ = tokenize_rows(load_prepared(run, "train"), loaded.tokenizer, cfg.data.max_seq_length)
    trainer = build_trainer(cfg, run, loaded, rows, [])
    assert trainer.head_at_trained_positions and not trainer.use_fused_head
    batch = next(iter(trainer.get_train_dataloader()))
    items = (batch["labels"][:, 1:] != -100).sum()
    restricted = trainer.compute_loss(loaded.model, dict(batch), num_items_in_batch=items)
    full = loaded.model(**batch, use_cache=False, num_items_in_batch=items).loss
    assert restricted.item() == pytest.approx(full.item(), rel=1e-5)


def test_the_trainers_evaluation_keeps_no_logits_and_gives_the_models_loss():
    """The evaluation every train.eval_steps asks only for the loss (prediction_loss_only), so TRL's prediction_step
    takes the restricted head and keeps no validation logits (validation tokens x vocabulary in fp32 otherwise)."""
    from labkit.data import load_prepared
    from labkit.train.loading import load_for_training
    from labkit.train.trainer import build_trainer, tokenize_rows

    cfg, run = prepared_run("head-eval", {"train.eval_steps": 1}, n_train=12)
    loaded = load_for_training(cfg, verbose=False)
    rows, _ = tokenize_rows(load_prepared(run, "train"), loaded.tokenizer, cfg.data.max_seq_length)
    trainer = build_trainer(cfg, run, loaded, rows, rows[:4])
    assert trainer.args.prediction_loss_only
    batch = next(iter(trainer.get_eval_dataloader()))
    loss, logits, _ = trainer.prediction_step(loaded.model, dict(batch), trainer.args.prediction_loss_only)
    assert logits is None
    full = loaded.model(**batch, use_cache=False).loss
    assert loss.item() == pytest.approx(full.item(), rel=1e-5)
