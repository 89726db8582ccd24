"""Scoring one batch of encoded multiple-choice items: the summed log-prob of every choice.

Two layouts (:mod:`labkit.eval.mcscore` tokenises the items as lm-evaluation-harness does and picks one):

* one row per item (:func:`score_batch`, the default): the context and the choices' shared prefix, then every
  choice's own tokens at the positions they would have after the context, behind a 4D attention mask that keeps
  the choices apart; one forward pass;
* two passes with a KV cache (:func:`score_batch_with_cache`): the context once, its cache copied per choice, then
  the choices; the fallback where a model takes no custom mask (:func:`tree_blocker` says why).

In both, the LM head projects only the positions whose next token is scored (``labkit.train.head.head_only_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EncodedItem:
    index: int
    context: list[int]
    continuations: list[list[int]]


def _pad_left(sequences: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids, mask


def _pad_right(sequences: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def shared_prefix(continuations: Sequence[list[int]]) -> int:
    """How many leading tokens every continuation shares, leaving each at least one token of its own.

    PIQA's two solutions often differ in a word or two ("... bedding made of ripped paper strips ..." / "...
    ripped jeans material ..."): the shared tokens' log-probs are the same for every choice, so they are
    computed once, with the context, and added to each choice's sum.
    """
    limit = min(len(c) for c in continuations) - 1
    first = continuations[0]
    k = 0
    while k < limit and all(c[k] == first[k] for c in continuations[1:]):
        k += 1
    return k


def tree_layout(e: EncodedItem) -> tuple[list[int], list[int], list[int], list[tuple[int, int, int]]]:
    """One item as one row: its context and the choices' shared prefix, then each choice's own tokens but the last.

    Returns (token ids, position ids, branch per token: -1 for the shared part, j for choice j, and the scored
    (row index, target token, choice) triples). Choice j's tokens sit at positions ``L, L+1, ...`` after the
    shared part of length ``L`` and see only the shared part and their own branch (:func:`tree_attention_mask`),
    so each choice is scored as if it followed the context alone.
    """
    k = shared_prefix(e.continuations)
    shared = e.context + e.continuations[0][:k]
    length = len(shared)
    ids, positions, branch = list(shared), list(range(length)), [-1] * length
    scored = []
    for j, continuation in enumerate(e.continuations):
        scored += [(length - k - 1 + t, continuation[t], j) for t in range(k)]  # the shared prefix, for every choice
        rest = continuation[k:]
        scored.append((length - 1, rest[0], j))                              # the choice's first own token
        start = len(ids)
        for t, token in enumerate(rest[:-1]):
            ids.append(token)
            positions.append(length + t)
            branch.append(j)
            scored.append((start + t, rest[t + 1], j))
    return ids, positions, branch, scored


def tree_attention_mask(branch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 1, width, width) additive mask from (batch, width) branch ids (-1 shared, j >= 0 choice, -2 padding):
    causal in row order, and a token sees the shared part and its own branch only (padding: the shared part and
    itself, so no softmax row is empty). Additive (0 / dtype min) rather than boolean so the eager attention takes it too."""
    width = branch.shape[1]
    order = torch.arange(width, device=branch.device)
    causal = order[:, None] >= order[None, :]
    query, key = branch[:, :, None], branch[:, None, :]
    allowed = causal[None] & ((key == -1) | (key == query))
    mask = torch.zeros(allowed.shape, dtype=dtype, device=branch.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def tree_blocker(model, encoded: Sequence[EncodedItem]) -> str | None:
    """Why the one-pass tree layout cannot score ``encoded`` on ``model`` (None: it can).

    The layout hands the model a custom 4D mask: transformers' sdpa and eager attention take one as it is;
    flash / flex attention and Unsloth's fast forward build their own. A sliding-window model (Gemma 3) would
    apply the one mask to its sliding layers too, which is exact only while every position fits in the window.
    """
    config = model.config
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in ("sdpa", "eager"):
        return f"attention {implementation!r} takes no custom mask"
    if getattr(config, "unsloth_version", None):
        return "Unsloth's forward builds its own mask"
    window = getattr(config, "sliding_window", None)
    longest = max(len(e.context) + max(map(len, e.continuations)) for e in encoded)
    if window and longest > window:
        return f"an item of {longest} tokens exceeds the {window}-token sliding window"
    return None


@torch.inference_mode()
def score_batch(model, batch: Sequence[EncodedItem], pad_id: int) -> list[list[float]]:
    """Summed log-prob of every continuation of every item in ``batch``: one forward pass over the items laid out
    as trees (:func:`tree_layout`) where the model takes the mask, else the two-pass KV-cache path."""
    if tree_blocker(model, batch) is not None:
        return score_batch_with_cache(model, batch, pad_id)
    from labkit.train.head import head_only_at

    device = next(model.parameters()).device
    rows = [tree_layout(e) for e in batch]
    width = max(len(ids) for ids, *_ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    branch = torch.full((len(rows), width), -2, dtype=torch.long)
    scored = torch.zeros((len(rows), width), dtype=torch.bool)
    for row, (row_ids, row_positions, row_branch, row_scored) in enumerate(rows):
        ids[row, : len(row_ids)] = torch.tensor(row_ids)
        positions[row, : len(row_ids)] = torch.tensor(row_positions)
        branch[row, : len(row_ids)] = torch.tensor(row_branch)
        scored[row, [index for index, _, _ in row_scored]] = True
    # the activations' dtype (a 4-bit model's first parameter may be packed uint8; its embeddings are not)
    mask = tree_attention_mask(branch, model.get_input_embeddings().weight.dtype)
    with head_only_at(model, scored.to(device)):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       use_cache=False).logits                      # (scored positions, vocab), row by row
    head_row = (scored.view(-1).cumsum(0) - 1).view(scored.shape)   # where each scored position's logits are
    picks, targets, owners, first_choice = [], [], [], 0
    for row, (_, _, _, row_scored) in enumerate(rows):
        for index, target, choice in row_scored:
            picks.append(int(head_row[row, index]))
            targets.append(target)
            owners.append(first_choice + choice)
        first_choice += len(batch[row].continuations)
    logprobs = torch.log_softmax(logits.float(), dim=-1)[torch.tensor(picks, device=device),
                                                           torch.tensor(targets, device=device)]
    totals = torch.zeros(first_choice, device=device).index_add_(0, torch.tensor(owners, device=device), logprobs)
    return _split_per_item(totals.tolist(), batch)


def _split_per_item(totals: list[float], batch: Sequence[EncodedItem]) -> list[list[float]]:
    scores, start = [], 0
    for e in batch:
        scores.append(totals[start : start + len(e.continuations)])
        start += len(e.continuations)
    return scores


@torch.inference_mode()
def score_batch_with_cache(model, batch: Sequence[EncodedItem], pad_id: int) -> list[list[float]]:
    """Summed log-prob of every continuation of every item in ``batch``.

    Pass 1 runs each context followed by its choices' shared prefix (left-padded) and projects onto the
    vocabulary only the positions that predict a prefix token or a choice's first own token: that gives the
    prefix's log-prob, the first own token's log-prob of each choice and a KV cache. The cache rows are repeated
    once per choice; pass 2 runs the rest of each choice ([:-1], right-padded) on top of it, projecting only its
    real (not padding) positions, to score its remaining tokens.
    """
    from labkit.train.head import head_only_at

    device = next(model.parameters()).device
    prefix = [shared_prefix(e.continuations) for e in batch]
    shared = [e.context + e.continuations[0][:k] for e, k in zip(batch, prefix)]
    rests = [[c[k:] for c in e.continuations] for e, k in zip(batch, prefix)]
    ctx_ids, ctx_mask = _pad_left(shared, pad_id)
    ctx_ids, ctx_mask = ctx_ids.to(device), ctx_mask.to(device)
    width = ctx_ids.shape[1]
    scored = torch.zeros_like(ctx_mask, dtype=torch.bool)  # the last k + 1 positions of each row
    for row, k in enumerate(prefix):
        scored[row, width - k - 1:] = True
    with head_only_at(model, scored):
        out = model(input_ids=ctx_ids, attention_mask=ctx_mask, position_ids=(ctx_mask.cumsum(-1) - 1).clamp(min=0),
                    use_cache=True)
    logprobs = torch.log_softmax(out.logits.float(), dim=-1)  # (sum of k + 1, vocab), row by row
    ends = torch.tensor(prefix, device=device).add(1).cumsum(0) - 1  # each row's last (first own token) entry
    first_logprobs = logprobs[ends]
    prefix_targets = [t for e, k in zip(batch, prefix) for t in e.continuations[0][:k] + [-1]]
    taken = torch.tensor(prefix_targets, device=device)
    prefix_rows = torch.repeat_interleave(torch.arange(len(batch), device=device),
                                          torch.tensor(prefix, device=device) + 1)
    per_token = logprobs.gather(-1, taken.clamp(min=0)[:, None]).squeeze(-1).masked_fill(taken < 0, 0.0)
    prefix_logprob = torch.zeros(len(batch), device=device).index_add_(0, prefix_rows, per_token)

    owner = torch.tensor([i for i, r in enumerate(rests) for _ in r], device=device)
    conts = [c for r in rests for c in r]
    first_tokens = torch.tensor([c[0] for c in conts], device=device)
    totals = prefix_logprob[owner] + first_logprobs[owner, first_tokens]

    if max(len(c) for c in conts) > 1:
        cache = out.past_key_values
        cache.reorder_cache(owner)  # index_select on the batch dim: one cache row per choice
        inp, inp_mask = _pad_right([c[:-1] for c in conts], pad_id)
        targets, _ = _pad_right([c[1:] for c in conts], 0)
        inp, inp_mask, targets = inp.to(device), inp_mask.to(device), targets.to(device)
        ctx_lengths = ctx_mask.sum(-1)[owner]
        real = inp_mask.bool()
        with head_only_at(model, real):
            logits = model(
                input_ids=inp,
                attention_mask=torch.cat([ctx_mask[owner], inp_mask], dim=-1),
                position_ids=ctx_lengths[:, None] + torch.arange(inp.shape[1], device=device)[None, :],
                past_key_values=cache,
                use_cache=True,
            ).logits
        token_logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[real][:, None]).squeeze(-1)
        rows = torch.arange(len(conts), device=device)[:, None].expand_as(real)[real]
        totals = totals + torch.zeros(len(conts), device=device).index_add_(0, rows, token_logprobs)

    return _split_per_item(totals.tolist(), batch)
