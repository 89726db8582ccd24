"""``labkit eval --model M --suite S [--data FILE] [--limit N]``: one model on one suite, outside a run.

Prints the suite's metrics with 95% bootstrap intervals: acc and acc_norm for a multiple-choice suite (or a
multiple-choice file), exact match and F1 for SQuAD. ``limit`` keeps the first N rows (what ``lm_eval --limit``
does, so the numbers compare with the harness on the same items; a run's ``eval.limit`` takes a seeded subset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.config import Config


def _flat(aggregate: dict[str, dict]) -> dict[str, Any]:
    """{metric: {mean, ci_low, ci_high}} -> {metric: mean, metric_ci: [low, high]} (the CLI's JSON)."""
    out: dict[str, Any] = {}
    for name, stats in aggregate.items():
        out[name], out[f"{name}_ci"] = stats["mean"], [stats["ci_low"], stats["ci_high"]]
    return out


def score_suite(cfg: Config, model_name: str, suite: str | None = None, data: str | Path | None = None,
                limit: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Score ``model_name`` on ``suite`` (from the hub, or from ``data``: the hub schema or labkit's MC format), or on
    the MC file ``data`` alone when ``suite`` is None."""
    from labkit.env import pick_device
    from labkit.eval.aggregate import aggregate_category
    from labkit.eval.evaluate import generation_records, mc_records
    from labkit.eval.suites import load_suite
    from labkit.models import load_causal_lm, load_tokenizer

    if limit is not None and limit < 1:
        raise ValueError(f"--limit {limit} is invalid: give a positive number of rows")
    if suite is None and data is None:
        raise ValueError("give --suite NAME (from the hub, or with --data FILE) or --data FILE (multiple choice)")
    name = suite or f"custom:{data}"
    loaded = load_suite(name, limit, cfg.eval.seed, data=data if suite else None, first=True)
    model = load_causal_lm(model_name, device=pick_device(cfg.model.device))
    tokenizer = load_tokenizer(model_name)
    if loaded.kind == "mc":
        records = mc_records(model, tokenizer, loaded.items, cfg, progress, loaded.category)
    else:
        records = generation_records(model, tokenizer, {loaded.category: loaded.items}, cfg, progress)[loaded.category]
    aggregate = aggregate_category(loaded.category, records, cfg.eval.bootstrap, cfg.eval.seed)
    result = {"model": model_name, "suite": suite or "custom", "source": loaded.source, "n": len(records),
              **_flat(aggregate)}
    if data is not None:
        result["data"] = str(data)
    return result


def score_mc_file(model_name: str, data: str | Path, limit: int | None = None, batch_size: int = 16,
                  device: str = "auto", n_resamples: int = 1000, seed: int = 0, progress: bool = False) -> dict:
    """acc and acc_norm with 95% intervals of ``model_name`` on an evalsets-format file (first ``limit`` rows)."""
    from labkit.config import load_config

    cfg = load_config(overrides={"eval.batch_size": batch_size, "model.device": device, "eval.bootstrap": n_resamples,
                                 "eval.seed": seed})
    return score_suite(cfg, model_name, data=data, limit=limit, progress=progress)
