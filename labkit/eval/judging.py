"""The optional LLM judge (``eval.judge_model``): Prometheus-style 1-5 grades of the general replies.

A judge is only as good as its size: under 1B parameters its grades are close to noise, and the verdict
says so. The judge sees the user's request, the reply and the reference reply (which scores 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

JUDGED_CATEGORY = "general"
JUDGE_CATEGORY = "judge"
JUDGE_NEW_TOKENS = 192  # Prometheus writes its feedback before the [RESULT] score


def judge_generator(model, tokenizer, batch_size: int, seed: int):
    """``generate(prompts) -> replies`` for labkit.eval.judge.run_judge, using the judge's chat template."""
    from labkit.infer.generate import Sampling, generate_chat
    from labkit.eval.judge import ABS_SYSTEM_PROMPT

    def generate(prompts: list[str]) -> list[str]:
        conversations = [[{"role": "system", "content": ABS_SYSTEM_PROMPT}, {"role": "user", "content": p}]
                         for p in prompts]
        return generate_chat(model, tokenizer, conversations, Sampling(max_new_tokens=JUDGE_NEW_TOKENS, seed=seed),
                             batch_size=batch_size, progress=True)
    return generate


def judge_records(generate, records: Sequence[Mapping], n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """One ``judge`` record per judged reply: judge_score (None when unparseable), feedback, error."""
    from labkit.eval.judge import run_judge

    items = [{"instruction": r["prompt"], "response": r["prediction"], "reference_answer": str(r["reference"])}
             for r in records]
    result = run_judge(generate, items, n_resamples=n_resamples, seed=seed)
    return [{"id": r["id"], "category": JUDGE_CATEGORY, "prompt": r["prompt"], "prediction": r["prediction"],
             "reference": r["reference"], "judge_score": j["score"], "feedback": j["feedback"], "error": j["error"]}
            for r, j in zip(records, result["per_item"])]


def run_judge_on(cfg, records_by_tag: Mapping[str, dict[str, list[dict]]], progress: bool = True) -> dict:
    """Grade the general replies of every evaluated model; adds ``judge`` records in place.

    Returns the summary's ``judge`` entry: {model, params, parse_failures} or {skipped: reason}.
    """
    if not cfg.eval.judge_model:
        return {"skipped": "eval.judge_model is not set"}
    if not any(records.get(JUDGED_CATEGORY) for records in records_by_tag.values()):
        return {"model": cfg.eval.judge_model, "skipped": f"no '{JUDGED_CATEGORY}' items to judge"}
    from labkit.templates import ensure_chat_template
    from labkit.infer.modelload import eval_device_and_dtype
    from labkit.models import load_causal_lm, load_tokenizer

    device, dtype = eval_device_and_dtype(cfg)
    model = load_causal_lm(cfg.eval.judge_model, device=device, dtype=dtype)
    tokenizer = ensure_chat_template(load_tokenizer(cfg.eval.judge_model), "auto")
    generate = judge_generator(model, tokenizer, cfg.eval.batch_size, cfg.eval.seed)
    failures = {}
    for tag, records in records_by_tag.items():
        judged = judge_records(generate, records.get(JUDGED_CATEGORY, []), cfg.eval.bootstrap, cfg.eval.seed)
        records[JUDGE_CATEGORY] = judged
        failures[tag] = sum(r["judge_score"] is None for r in judged)
    return {"model": cfg.eval.judge_model, "params": sum(p.numel() for p in model.parameters()),
            "parse_failures": failures}
