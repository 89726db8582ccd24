"""The rows training reads: conversations tokenized with labkit's assistant mask, a run's prepared splits, and
the validation loss computed outside the Trainer (the base model's, before training, on the same rows)."""

from __future__ import annotations

from labkit.runs import Run

# ------------------------------------------------------------------ data

def tokenize_rows(rows: list[dict], tokenizer, max_length: int | None) -> tuple[list[dict], int]:
    """``{input_ids, assistant_masks}`` per row, and how many rows were dropped for having no trained token."""
    from labkit.data.render import tokenize_conversation

    out, dropped = [], 0
    for row in rows:
        encoded = tokenize_conversation(tokenizer, row["messages"], max_length=max_length)
        if not any(encoded["assistant_masks"]):
            dropped += 1  # e.g. a prompt alone fills max_seq_length: nothing to learn from this row
            continue
        out.append({"input_ids": list(encoded["input_ids"]), "assistant_masks": list(encoded["assistant_masks"])})
    return out, dropped


def load_split(run: Run, split: str) -> list[dict]:
    from labkit.data.prepare import load_prepared

    return load_prepared(run, split)


# ------------------------------------------------------------------ loss outside the trainer

def evaluate_loss(model, tokenizer, rows: list[dict], *, max_length: int | None = None,
                  batch_size: int = 8) -> float:
    """Mean cross-entropy per trained (assistant) token over ``rows`` (a prepared split).

    Token-weighted over the whole set, so it does not depend on the batch size; the base model's loss before
    training and the adapter's after are both measured with this function on the same rows.
    """
    import torch

    from labkit.train.head import summed_trained_loss

    encoded, _ = tokenize_rows(rows, tokenizer, max_length)
    if not encoded:
        raise ValueError("evaluate_loss: no row has a trained (assistant) token; check the split and max_length")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = _pad_batch(encoded[start:start + batch_size], tokenizer.pad_token_id, device)
            batch_total, batch_count = summed_trained_loss(model, batch)  # the LM head at trained tokens only
            total += batch_total
            count += batch_count
    model.train(was_training)
    return total / count


def _pad_batch(items: list[dict], pad_id: int, device) -> dict:
    import torch

    width = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, item in enumerate(items):
        n = len(item["input_ids"])
        ids[i, :n] = torch.tensor(item["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.where(torch.tensor(item["assistant_masks"]) == 1, ids[i, :n], -100)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
