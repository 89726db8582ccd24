"""labkit's trainer does the Trainer's per-step model walks once (labkit.train.lean_steps): same numbers, same gradients."""

from __future__ import annotations

import torch
from transformers import Trainer

from labkit.train.lean_steps import trained_weights, zero_grad_from_list
from labkit.train.loading import load_for_training
from labkit.train.trainer import build_trainer, tokenize_rows
from train_support import prepared_run


def _trainer(name: str):
    cfg, run = prepared_run(name, {"train.max_steps": 1, "train.save_steps": 0, "train.max_grad_norm": 0.01})
    loaded = load_for_training(cfg, verbose=False)
    rows, _ = tokenize_rows([{"messages": [{"role": "user", "content": "What is 2 plus 3?"},
                                           {"role": "assistant", "content": "2 plus 3 is 5."}]}] * 4,
                            loaded.tokenizer, 64)
    return build_trainer(cfg, run, loaded, rows, []), loaded.model


def _backward(model) -> None:
    ids = torch.arange(3, 19).reshape(2, 8)
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()


def test_flop_count_is_the_trainers_with_the_parameters_counted_once(monkeypatch):
    trainer, model = _trainer("lean-flops")
    assert trainer.args.logging_nan_inf_filter is False   # no host read of every loss; labkit's guard stops NaNs
    counts = []
    original = model.num_parameters   # PEFT hands it on to the base model

    def counting(*a, **kw):
        counts.append(1)
        return original(*a, **kw)

    monkeypatch.setattr(model, "num_parameters", counting, raising=False)
    batches = [{"input_ids": torch.zeros(b, n, dtype=torch.long)} for b, n in ((2, 16), (4, 32), (1, 7))]
    ours = [trainer.floating_point_ops(batch) for batch in batches]
    assert len(counts) == 1
    assert ours == [Trainer.floating_point_ops(trainer, batch) for batch in batches]
    assert ours[0] > 0 and trainer.floating_point_ops({"pixel_values": torch.zeros(1)}) == 0


def test_clipping_the_trained_weights_gives_the_trainers_norm_and_gradients():
    trainer, model = _trainer("lean-clip")
    _backward(model)
    saved = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert saved and all(p.requires_grad for n, p in model.named_parameters() if n in saved)
    theirs = Trainer._clip_grad_norm(trainer, model)
    clipped = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for n, p in model.named_parameters():
        if n in saved:
            p.grad.copy_(saved[n])
    ours = trainer._clip_grad_norm(model)
    torch.testing.assert_close(ours, theirs)
    assert float(theirs) > 0.01   # max_grad_norm=0.01: the gradients were really scaled down
    for n, p in model.named_parameters():
        if n in clipped:
            torch.testing.assert_close(p.grad, clipped[n])


def test_fsdp_keeps_the_trainers_clipping(monkeypatch):
    from accelerate.utils import DistributedType

    trainer, model = _trainer("lean-fsdp")
    _backward(model)
    given = []
    monkeypatch.setattr(type(trainer.accelerator), "distributed_type", property(lambda self: DistributedType.FSDP))
    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", lambda params, norm: given.append(list(params)))
    trainer._clip_grad_norm(model)
    assert len(given[0]) == len(list(model.parameters()))   # all of them, as accelerate's FSDP path expects


def test_zero_grad_clears_the_trained_weights_and_is_gone_after_training():
    trainer, model = _trainer("lean-zero")
    trained = trained_weights(model)
    with zero_grad_from_list(model, trained):
        assert "zero_grad" in model.__dict__
        _backward(model)
        model.zero_grad(set_to_none=False)
        assert all(p.grad is not None and not p.grad.any() for p in trained)
        _backward(model)
        model.zero_grad()
        assert all(p.grad is None for p in model.parameters())
    assert "zero_grad" not in model.__dict__
    trainer.train()   # the trainer installs and removes it around train()
    assert "zero_grad" not in model.__dict__ and trainer.state.global_step == 1
