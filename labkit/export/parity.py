"""Does an exported model compute what the merged model computes? Greedy continuations and perplexity.

The reference (the merged model, or base + adapter) greedily continues a fixed set of chat prompts and scores
held-out text; each candidate (the GGUF read back by transformers, or by llama.cpp) is then run on the same
token ids. Everything works on token ids through a ``logits(ids) -> (len, vocab)`` function, so any runtime
can be checked the same way and one model at a time is in memory (the reference is freed before a candidate
is loaded).

Greedy check: the candidate, fed the reference's prompt + continuation, must predict every continuation token
(teacher forcing; equivalent to "generates the same continuation"). A disagreement where the reference itself
had two tokens within ``tie_margin`` logits of each other is a near-tie, reported but not failed: rounding to
16 or 8 bits may flip a coin the model never really decided. Perplexity: within ``ppl_tolerance`` (relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

LogitsFn = Callable[[list[int]], "torch.Tensor"]  # noqa: F821
GreedyFn = Callable[[list[int], int, list[int]], tuple[list[int], list]]

PROBES = (
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "List three prime numbers.",
    "How do I reverse a list in Python?",
    "Give one tip for sleeping better.",
)
# Used when the run has no held-out split: plain encyclopedic prose, scored as a single user/assistant exchange.
FALLBACK_HELD_OUT = (
    ("Tell me about the water cycle.",
     "Water evaporates from oceans and lakes, rises as vapour, cools and condenses into clouds, and falls back "
     "as rain or snow. Rivers and groundwater carry it back to the sea, and the cycle begins again."),
    ("What does a compiler do?",
     "A compiler translates source code written in a programming language into machine code or another "
     "lower-level form that a computer can run, checking the program for errors along the way."),
    ("Why is the sky blue?",
     "Sunlight is scattered by the molecules of the air, and shorter blue wavelengths are scattered much more "
     "than red ones, so blue light reaches our eyes from every direction of the sky."),
)
# Relative perplexity tolerance and near-tie margin (logits) per exported format. The margins follow the rounding
# noise measured on the demo export (SmolLM2-135M, tests/test_export_demo.py): "merged" rounds every weight to
# bf16 (max |logit diff| vs the fp32 unmerged model 0.43, flips seen at gaps 0.04); f16 of a bf16 checkpoint is
# almost exact (1e-4); q8_0 reached a max |logit diff| of 1.38 with a flip at a gap of 0.27 while the perplexity
# moved 0.16%. q4_k_m's margin is an estimate (not measured here: it needs llama.cpp). A corrupted file is caught
# by the perplexity tolerance and by confident tokens (gap above the margin) that change.
# "qlora_gap" (export/qlora.py) is not a pass/fail check but the size of the 4-bit-to-16-bit gap above which the
# export warns. PROVISIONAL, not yet measured: 5% perplexity and a 1.0-logit margin, to be replaced by the gap
# measured on a GPU (the stand-in QLoRA run's `labkit export`, which reports merge.qlora_gap) with a margin over it.
PPL_TOLERANCE = {"merged": 0.01, "f16": 0.01, "bf16": 0.01, "f32": 0.01, "q8_0": 0.03, "q4_k_m": 0.10,
                 "qlora_gap": 0.05}
TIE_MARGIN = {"merged": 0.25, "f16": 0.05, "bf16": 0.05, "f32": 0.01, "q8_0": 0.5, "q4_k_m": 1.5, "qlora_gap": 1.0}


@dataclass
class ParityInputs:
    """Token ids: chat prompts to continue and held-out sequences to score."""

    prompts: list[list[int]]
    held_out: list[list[int]]
    eos_ids: list[int]
    max_new_tokens: int = 16


@dataclass
class Reference:
    sequences: list[list[int]]          # prompt + greedy continuation
    prompt_lengths: list[int]
    logits: list["torch.Tensor"]        # noqa: F821  per probe: (new tokens, vocab), predicting each new token
    nll: float
    n_tokens: int
    texts: list[str] = field(default_factory=list)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / max(self.n_tokens, 1))


def build_inputs(tokenizer, held_out: Sequence[Sequence[dict]] | None = None, probes: Sequence[str] = PROBES,
                 max_new_tokens: int = 16, max_length: int = 256, limit: int = 8) -> ParityInputs:
    """Render probes (with the generation prompt) and held-out conversations with the chat template."""
    def render(messages, generation_prompt):
        ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=generation_prompt,
                                            tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)[:max_length]

    conversations = list(held_out or [])[:limit] or [
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in FALLBACK_HELD_OUT]
    from labkit.infer.generate import end_of_turn_ids

    return ParityInputs(prompts=[render([{"role": "user", "content": p}], True) for p in probes],
                        held_out=[render(c, False) for c in conversations],
                        eos_ids=list(end_of_turn_ids(tokenizer)), max_new_tokens=max_new_tokens)


# ------------------------------------------------------------------ runtimes as logits functions

def hf_logits(model) -> LogitsFn:
    """A transformers model as ``ids -> float32 logits`` (one sequence, no cache)."""
    import torch

    device = next(model.parameters()).device

    def logits(ids: list[int]):
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=device)).logits[0]
        return out.float().cpu()
    return logits


def hf_greedy(model) -> GreedyFn:
    """Greedy continuation with transformers' KV cache (much faster than a full forward per step), returning the
    raw logits of each step; no logits processor is applied, so each token is the argmax of its row."""
    import torch
    from transformers import GenerationConfig

    device = next(model.parameters()).device

    def greedy(prompt: list[int], max_new_tokens: int, eos_ids: list[int]):
        config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos_ids,
                                  pad_token_id=eos_ids[0] if eos_ids else 0, output_logits=True,
                                  return_dict_in_generate=True)
        ids = torch.tensor([prompt], device=device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        new = out.sequences[0, len(prompt):].tolist()
        return new, [row[0].float().cpu() for row in out.logits][:len(new)]
    return greedy


def llama_cpp_logits(llm) -> LogitsFn:
    """A ``llama_cpp.Llama`` (created with ``logits_all=True``) as ``ids -> float32 logits``."""
    import numpy as np
    import torch

    def logits(ids: list[int]):
        llm.reset()
        llm.eval(ids)
        return torch.from_numpy(np.array(llm.scores[:len(ids)], dtype=np.float32))
    return logits


# ------------------------------------------------------------------ measuring

def sequence_nll(logits_fn: LogitsFn, sequences: Sequence[list[int]]) -> tuple[float, int]:
    """Summed next-token NLL (nats) over every token of each sequence after the first, and the count."""
    import torch

    total, count = 0.0, 0
    for ids in sequences:
        if len(ids) < 2:
            continue
        logits = logits_fn(ids)[:-1]
        total += float(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum"))
        count += len(ids) - 1
    return total, count


def _greedy_by_forward(logits_fn: LogitsFn) -> GreedyFn:
    def greedy(prompt: list[int], max_new_tokens: int, eos_ids: list[int]):
        ids, rows = list(prompt), []
        for _ in range(max_new_tokens):
            rows.append(logits_fn(ids)[-1])
            ids.append(int(rows[-1].argmax()))
            if ids[-1] in eos_ids:
                break
        return ids[len(prompt):], rows
    return greedy


def reference_run(logits_fn: LogitsFn, inputs: ParityInputs, decode: Callable[[list[int]], str] | None = None,
                  greedy: GreedyFn | None = None) -> Reference:
    """Greedy continuations with the logits of each step, and the held-out NLL. ``greedy`` (e.g.
    :func:`hf_greedy`, with a KV cache) defaults to one full forward of ``logits_fn`` per new token."""
    greedy = greedy or _greedy_by_forward(logits_fn)
    sequences, step_logits = [], []
    for prompt in inputs.prompts:
        new, rows = greedy(list(prompt), inputs.max_new_tokens, inputs.eos_ids)
        sequences.append(list(prompt) + list(new))
        step_logits.append(_stack(rows))
    nll, count = sequence_nll(logits_fn, inputs.held_out)
    texts = [decode(s[len(p):]) for s, p in zip(sequences, inputs.prompts)] if decode else []
    return Reference(sequences, [len(p) for p in inputs.prompts], step_logits, nll, count, texts)


def _stack(rows):
    import torch

    return torch.stack(rows) if rows else torch.empty(0)


def compare(reference: Reference, logits_fn: LogitsFn, inputs: ParityInputs, *, ppl_tolerance: float,
            tie_margin: float) -> dict:
    """The candidate against the reference: greedy agreement, near-ties, perplexity; ``passed`` says it all."""
    mismatches, near_ties, worst, differing = [], [], 0.0, set()
    for probe, (ids, start, ref) in enumerate(zip(reference.sequences, reference.prompt_lengths,
                                                  reference.logits)):
        if len(ids) == start:
            continue
        cand = logits_fn(ids)[start - 1:len(ids) - 1]
        worst = max(worst, float((cand - ref).abs().max()))
        for step, (wanted, got) in enumerate(zip(ids[start:], cand.argmax(-1).tolist())):
            if got == wanted:
                continue
            differing.add(probe)
            gap = float(ref[step, wanted] - ref[step, got])
            entry = {"probe": probe, "step": step, "reference_token": wanted, "candidate_token": got,
                     "reference_gap": round(gap, 5)}
            (near_ties if gap <= tie_margin else mismatches).append(entry)
    nll, count = sequence_nll(logits_fn, inputs.held_out)
    ppl = math.exp(nll / max(count, 1))
    relative = abs(ppl / reference.perplexity - 1)
    return {
        "passed": not mismatches and relative <= ppl_tolerance,
        "greedy_identical": not mismatches and not near_ties,
        "greedy_mismatches": mismatches, "near_tie_flips": near_ties, "tie_margin": tie_margin,
        "probes": len(reference.sequences), "probes_identical": len(reference.sequences) - len(differing),
        "max_abs_logit_diff": round(worst, 5),
        "perplexity": round(ppl, 4), "reference_perplexity": round(reference.perplexity, 4),
        "perplexity_rel_diff": round(relative, 6), "ppl_tolerance": ppl_tolerance,
        "held_out_tokens": count,
    }


def failure_summary(result: dict) -> str:
    """One line saying why a comparison failed."""
    reasons = []
    if result["greedy_mismatches"]:
        first = result["greedy_mismatches"][0]
        reasons.append(f"{len(result['greedy_mismatches'])} greedy token(s) differ (first: probe {first['probe']}, "
                       f"step {first['step']}, reference margin {first['reference_gap']} logits)")
    if result["perplexity_rel_diff"] > result["ppl_tolerance"]:
        reasons.append(f"perplexity {result['perplexity']} vs {result['reference_perplexity']} "
                       f"({result['perplexity_rel_diff']:.2%} > {result['ppl_tolerance']:.0%})")
    return "; ".join(reasons) or "passed"


def summary_line(result: dict) -> str:
    """One line for people: greedy agreement per probe, perplexity drift, the verdict."""
    verdict = "passed" if result["passed"] else "FAILED: " + failure_summary(result)
    ties = f", {len(result['near_tie_flips'])} near-tie flip(s)" if result["near_tie_flips"] else ""
    return (f"{result['probes_identical']}/{result['probes']} probes continue identically{ties}; perplexity "
            f"{result['perplexity']} vs {result['reference_perplexity']} (drift "
            f"{result['perplexity_rel_diff']:.3%}, tolerance {result['ppl_tolerance']:.0%}); max |logit diff| "
            f"{result['max_abs_logit_diff']:.3g}: {verdict}")
