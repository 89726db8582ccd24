"""From per-example records to means with bootstrap 95% intervals, and the paired base-vs-tuned test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labkit.eval import metrics
from labkit.eval.scoring import Metric, metrics_for

CONFIDENCE = 0.95
PAIRED_RESAMPLES = 10_000  # at least this many, so that a paired p-value can go below 0.001


def perplexity_ci(records: Sequence[Mapping], n_resamples: int, seed: int) -> dict[str, Any]:
    """Corpus perplexity exp(sum NLL / sum tokens) with a percentile-bootstrap interval over conversations.

    Hand-written because :func:`labkit.eval.metrics.bootstrap_ci` bootstraps a mean, and corpus perplexity is a
    ratio of sums (long replies weigh more); resampling whole conversations keeps each one's tokens together.
    """
    kept = [r for r in records if r.get("n_tokens")]
    if not kept:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    nll = np.array([r["nll"] for r in kept], dtype=float)
    tokens = np.array([r["n_tokens"] for r in kept], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(kept), size=(n_resamples, len(kept)))
    ratios = nll[idx].sum(axis=1) / tokens[idx].sum(axis=1)
    low, high = np.percentile(ratios, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return {"mean": metrics.perplexity(nll.sum(), int(tokens.sum())), "ci_low": float(math.exp(low)),
            "ci_high": float(math.exp(high)), "n": len(kept)}


def metric_values(records: Sequence[Mapping], metric: Metric) -> list[float | None]:
    """One value per record (None where the record has none, e.g. an unparseable judge reply).

    For perplexity the per-conversation value is its mean NLL per assistant token (its log-perplexity).
    """
    if metric.name == "perplexity":
        return [r["nll"] / r["n_tokens"] if r.get("n_tokens") else None for r in records]
    return [None if r.get(metric.name) is None else float(r[metric.name]) for r in records]


def aggregate_category(category: str, records: Sequence[Mapping], n_resamples: int, seed: int) -> dict[str, Any]:
    """{metric: {mean, ci_low, ci_high, n}} for the metrics present in ``records``."""
    out: dict[str, Any] = {}
    for metric in metrics_for(category):
        if metric.name == "perplexity":
            if any("nll" in r for r in records):
                out[metric.name] = perplexity_ci(records, n_resamples, seed)
            continue
        values = [v for v in metric_values(records, metric) if v is not None]
        if values:
            mean, low, high = metrics.bootstrap_ci(values, n_resamples=n_resamples, confidence=CONFIDENCE, seed=seed)
            out[metric.name] = {"mean": mean, "ci_low": low, "ci_high": high, "n": len(values)}
    return out


def outcome(diff_low: float, diff_high: float, higher_is_better: bool) -> str:
    """'better', 'worse' or 'unclear' for the tuned model, from the 95% interval of (tuned - base)."""
    if diff_low > 0:
        return "better" if higher_is_better else "worse"
    if diff_high < 0:
        return "worse" if higher_is_better else "better"
    return "unclear"


def compare_category(category: str, base: Sequence[Mapping], tuned: Sequence[Mapping], n_resamples: int,
                     seed: int) -> dict[str, Any]:
    """Paired test per metric on the same items (tuned - base), with the outcome in words."""
    base_ids, tuned_ids = [r["id"] for r in base], [r["id"] for r in tuned]
    if base_ids != tuned_ids:
        raise ValueError(f"{category}: base and tuned were scored on different items; a paired test needs the "
                         "same items in the same order")
    out: dict[str, Any] = {}
    for metric in metrics_for(category):
        pairs = [(a, b) for a, b in zip(metric_values(base, metric), metric_values(tuned, metric))
                 if a is not None and b is not None]  # only items scored for both models
        if not pairs:
            continue
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        result = metrics.paired_test(a, b, n_resamples=max(n_resamples, PAIRED_RESAMPLES), confidence=CONFIDENCE,
                                     seed=seed)
        result["higher_is_better"] = metric.higher_is_better
        result["outcome"] = outcome(result["ci_low"], result["ci_high"], metric.higher_is_better)
        if metric.name == "perplexity":
            result["paired_on"] = "mean NLL per assistant token of each conversation"
        out[metric.name] = result
    return out


def intervals_overlap(a: Mapping, b: Mapping) -> bool:
    return not (a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"])
