"""After QLoRA: what the merged model is checked against, and the 4-bit-to-16-bit gap as its own number.

QLoRA trains the adapter on the base weights quantised to 4-bit nf4; the export merges it into the original 16-bit
weights (the checkpoint every runtime loads, and what llama.cpp re-quantises). Two differences follow, and the
export report keeps them apart:

- ``merge.parity``, the merge check: the merged model against the 16-bit base + adapter, unmerged. Only rounding
  to 16 bits separates the two, as after a 16-bit LoRA run, so it keeps that case's tolerance and still catches a
  wrong merge.
- ``merge.qlora_gap``, the QLoRA gap: the 16-bit base + adapter against the model as it was trained, the 4-bit base
  + adapter, which is the reference here (its greedy continuations and held-out perplexity). It is what changes
  when the adapter meets weights it was not trained on. No export step can remove it, so it does not fail the
  export; above ``parity.PPL_TOLERANCE["qlora_gap"]`` the export warns and says what to do.

The 4-bit model is rebuilt the way labkit trains with transformers + PEFT (:func:`labkit.train.loading.four_bit_config`:
nf4, double quantisation, the run's compute dtype). Under Unsloth the base may have been one of its pre-quantised
4-bit checkpoints instead, so the gap is then measured against the nearest plain nf4 model, not the exact one.
Measuring needs CUDA and bitsandbytes; elsewhere the report says the gap was not measured and why.
"""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

from labkit.export import parity

GAP = "qlora_gap"


def unavailable_reason() -> str | None:
    """Why the 4-bit trained model cannot be loaded here, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "not measured: the 4-bit trained model needs a CUDA GPU (bitsandbytes nf4)"
    if importlib.util.find_spec("bitsandbytes") is None:
        return 'not measured: the 4-bit trained model needs bitsandbytes (pip install "labkit[gpu]")'
    return None


def load_4bit_trained(base_dir: Path, adapter_dir: Path, compute_dtype: str):
    """The model as QLoRA trained it: the base quantised to nf4 on the current GPU, with the adapter on top."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from labkit.train.loading import four_bit_config

    base = AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=four_bit_config(compute_dtype),
                                                device_map={"": torch.cuda.current_device()})
    return PeftModel.from_pretrained(base, adapter_dir).eval()


def as_trained_reference(base_dir: Path, adapter_dir: Path, inputs: parity.ParityInputs, compute_dtype: str,
                         decode=None) -> parity.Reference | str:
    """The 4-bit trained model's greedy continuations and held-out perplexity, or the reason it cannot be run.
    ``compute_dtype`` is the run's ``model.dtype`` (``auto`` resolves as in training)."""
    from labkit.train.loading import resolve_dtype

    reason = unavailable_reason()
    if reason:
        return reason
    model = load_4bit_trained(base_dir, adapter_dir, resolve_dtype(compute_dtype, "cuda"))
    reference = parity.reference_run(parity.hf_logits(model), inputs, decode, parity.hf_greedy(model))
    del model
    gc.collect()
    import torch

    torch.cuda.empty_cache()  # the GPU memory goes back before the 16-bit models load
    return reference


def measure_gap(as_trained: parity.Reference | str, logits_16bit: parity.LogitsFn,
                inputs: parity.ParityInputs) -> dict:
    """The 16-bit base + adapter against the 4-bit trained model; ``within_tolerance`` instead of a verdict, and a
    ``warning`` when it is not."""
    if isinstance(as_trained, str):
        return {"skipped": as_trained}
    result = parity.compare(as_trained, logits_16bit, inputs, ppl_tolerance=parity.PPL_TOLERANCE[GAP],
                            tie_margin=parity.TIE_MARGIN[GAP])
    result["within_tolerance"] = result.pop("passed")
    if not result["within_tolerance"]:
        result["warning"] = (
            f"the 16-bit model this export writes differs from the 4-bit model you trained by more than usual "
            f"({parity.failure_summary({**result, 'passed': False})}): evaluate the merged model (notebook 04 with "
            f"model.load_in_4bit=false) before shipping it, or serve the adapter on the 4-bit base (export/adapter)")
    return result


def gap_line(result: dict) -> str:
    """One line for people."""
    if "skipped" in result:
        return f"QLoRA gap (16-bit base + adapter vs the 4-bit trained model): {result['skipped']}"
    return (f"QLoRA gap (16-bit base + adapter vs the 4-bit trained model): perplexity {result['perplexity']} vs "
            f"{result['reference_perplexity']} ({result['perplexity_rel_diff']:.3%}; usual up to "
            f"{result['ppl_tolerance']:.0%}), {result['probes_identical']}/{result['probes']} probes continue "
            f"identically, max |logit diff| {result['max_abs_logit_diff']:.3g}")
