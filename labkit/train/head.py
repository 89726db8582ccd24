"""The causal-LM loss with the LM head applied only at the positions that carry loss.

In SFT only the assistant tokens are trained (10-13% of the tokens in the cpu-demo run), yet the model's own
loss projects every position onto the vocabulary (SmolLM2: 576 x 49,152, about 28% of a CPU training step).
TRL 1.15 avoids that with a Triton kernel (its fused LM head), which needs CUDA; this module does the same in
plain torch for the transformers + PEFT path elsewhere (Unsloth keeps its own fused loss).

How: the model's own forward runs unchanged, with a forward pre-hook on its output-embedding module that hands
the head only the hidden states of the trained positions ((N, hidden) instead of (batch, length, hidden)). So
what the model does around its head still applies: tied embeddings (the head module is the same either way),
Gemma's final-logit soft-capping, Granite's / Cohere's logit scaling (all elementwise on the logits). The
head's input is gathered with a boolean mask, so each row of a padded batch keeps only its own trained
positions. transformers' ``logits_to_keep`` cannot say that (one index list for the whole batch).

The loss is the model's (``ForCausalLMLoss``): cross-entropy summed over the trained tokens, divided by
``num_items_in_batch`` (the trained tokens of the whole accumulated batch, which the Trainer counts) or, when it
is not given, by this micro-batch's trained tokens.
"""

from __future__ import annotations

import contextlib

import torch

IGNORE = -100


def next_token_targets(labels: torch.Tensor | None, shift_labels: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask (batch, length) of the positions whose NEXT token is trained, those tokens (N,)).

    Position t predicts token t+1, so the mask is ``labels[:, 1:] != -100`` with the last position False (what
    the model's loss does by padding the shifted labels with -100). Pre-shifted ``shift_labels`` (TRL's
    padding-free and context-parallel collators may pass them) are used as they are.
    """
    if shift_labels is None:
        if labels is None:
            raise ValueError("the trained-positions loss needs `labels` (or `shift_labels`) in the batch")
        shift_labels = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)
    mask = shift_labels != IGNORE
    return mask, shift_labels[mask]


@contextlib.contextmanager
def head_only_at(model, mask: torch.Tensor):
    """Inside the block, ``model``'s output-embedding module sees only ``hidden[mask]``: logits come out (N, vocab)
    in mask order (row by row). ``model`` is the unwrapped model (PEFT's wrapper delegates to it)."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings (LM head) to restrict")

    def keep_masked(_module, args, kwargs):
        hidden = args[0]
        if hidden.shape[:2] != mask.shape:
            raise RuntimeError(f"LM head input {tuple(hidden.shape)} does not match the label mask "
                               f"{tuple(mask.shape)}; was logits_to_keep set?")
        return (hidden[mask.to(hidden.device)], *args[1:]), kwargs

    handle = head.register_forward_pre_hook(keep_masked, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def trained_positions_loss(model, inputs: dict, num_items_in_batch=None, head_owner=None):
    """The causal-LM loss of ``inputs`` (with ``labels``), projecting only the trained positions.

    ``head_owner`` is the module whose output embeddings to restrict when ``model`` is wrapped (DDP); by default
    ``model`` itself. Equals ``model(**inputs).loss`` (with the same ``num_items_in_batch``) up to float rounding.
    """
    inputs = dict(inputs)
    mask, targets = next_token_targets(inputs.pop("labels", None), inputs.pop("shift_labels", None))
    with head_only_at(head_owner if head_owner is not None else model, mask):
        logits = model(**inputs, use_cache=False).logits
    # The model's loss upcasts logits to float32 before the cross-entropy; so does this one.
    loss = torch.nn.functional.cross_entropy(logits.float(), targets.to(logits.device), reduction="sum")
    divisor = mask.sum() if num_items_in_batch is None else num_items_in_batch
    # Clamped: a batch without trained tokens gives a differentiable zero rather than 0 / 0 (like TRL's loss).
    return loss / torch.as_tensor(divisor, device=loss.device).clamp(min=1)


def summed_trained_loss(model, batch: dict) -> tuple[float, int]:
    """(sum of -log p over the trained tokens, their count) for one batch, without gradients."""
    mask, targets = next_token_targets(batch["labels"])
    with torch.no_grad(), head_only_at(model, mask):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    total = torch.nn.functional.cross_entropy(logits.float(), targets.to(logits.device), reduction="sum")
    return float(total), int(mask.sum())
