"""Negative log-likelihood of held-out conversations, counted on the trained (assistant) tokens only.

The masks are the training masks (:func:`labkit.data.render.tokenize_conversation`), so the perplexity
measures exactly what fine-tuning optimised: how likely the model finds the reference replies given their
prompts. Written here rather than with ``evaluate``'s perplexity metric because that one scores every
token of a plain text and knows nothing of chat templates or masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm.auto import tqdm


def _right_pad(sequences: Sequence[list[int]], value: int):
    import torch

    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def conversation_nll(model, tokenizer, conversations: Sequence[Sequence[Mapping]], batch_size: int = 4,
                     max_length: int | None = None, progress: bool = False) -> list[dict[str, float]]:
    """Per conversation: summed NLL (nats) over its assistant tokens and their count."""
    import torch

    from labkit.data.render import tokenize_conversation

    encoded = [tokenize_conversation(tokenizer, list(c), max_length=max_length, warn=False) for c in conversations]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[dict[str, float]] = []
    model.eval()
    for start in tqdm(range(0, len(encoded), batch_size), desc="perplexity", disable=not progress, unit="batch"):
        batch = encoded[start:start + batch_size]
        ids = _right_pad([e["input_ids"] for e in batch], pad).to(device)
        attention = _right_pad([[1] * len(e["input_ids"]) for e in batch], 0).to(device)
        trained = _right_pad([e["assistant_masks"] for e in batch], 0).to(device)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        targets, keep = ids[:, 1:], trained[:, 1:].bool()
        token_nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        sums = (token_nll * keep).sum(-1)
        counts = keep.sum(-1)
        results += [{"nll": float(s), "n_tokens": int(n)} for s, n in zip(sums, counts)]
    return results
