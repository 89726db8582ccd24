"""Tables for the notebook: base vs tuned with intervals, and the best / worst examples per category."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from labkit.eval.scoring import Metric, metrics_for, primary_metric, scored_as

TAGS = ("base", "tuned")


def fmt_value(value: float | None, metric: Metric) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if metric.percent else f"{value:.2f}"


def fmt_interval(stats: Mapping | None, metric: Metric) -> str:
    """``64.0% [55.0, 73.0]``: the mean and its 95% interval."""
    if not stats or stats.get("mean") is None:
        return "-"
    if metric.percent:
        return f"{100 * stats['mean']:.1f}% [{100 * stats['ci_low']:.1f}, {100 * stats['ci_high']:.1f}]"
    return f"{stats['mean']:.2f} [{stats['ci_low']:.2f}, {stats['ci_high']:.2f}]"


def fmt_change(comparison: Mapping | None, metric: Metric) -> str:
    """``+52.0 pts [+42.0, +61.0]`` (percent metrics) or ``-1.20 [-2.00, -0.40]``."""
    if not comparison:
        return "-"
    if metric.name == "perplexity":  # the paired test ran on log-perplexity: exp(diff) is a perplexity ratio
        ratios = (math.exp(comparison[k]) for k in ("mean_diff", "ci_low", "ci_high"))
        return "x{:.3f} [{:.3f}, {:.3f}]".format(*ratios)
    if metric.percent:
        return (f"{100 * comparison['mean_diff']:+.1f} pts [{100 * comparison['ci_low']:+.1f}, "
                f"{100 * comparison['ci_high']:+.1f}]")
    return f"{comparison['mean_diff']:+.2f} [{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}]"


def fmt_p(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def table_rows(summary: Mapping) -> list[dict[str, Any]]:
    """One plain row per (category, metric) with numbers (fractions, not percentages)."""
    results, comparison = summary.get("results", {}), summary.get("comparison", {})
    categories = sorted({c for tag in results.values() for c in tag})
    rows = []
    for category in categories:
        for metric in metrics_for(category):
            row: dict[str, Any] = {"category": category, "metric": metric.name, "label": metric.label}
            for tag in TAGS:
                stats = results.get(tag, {}).get(category, {}).get("metrics", {}).get(metric.name)
                row[f"{tag}_n"] = stats.get("n") if stats else None
                for key in ("mean", "ci_low", "ci_high"):
                    row[f"{tag}_{key}"] = stats.get(key) if stats else None
            paired = comparison.get(category, {}).get(metric.name)
            for key in ("mean_diff", "ci_low", "ci_high", "p_value", "outcome"):
                row[f"diff_{key}" if key in ("ci_low", "ci_high") else key] = paired.get(key) if paired else None
            if row["base_mean"] is not None or row["tuned_mean"] is not None:
                rows.append(row)
    return rows


def summary_table(summary: Mapping, formatted: bool = True):
    """A pandas DataFrame, base vs tuned per category and metric, with 95% intervals and the paired test.

    ``formatted=False`` gives the raw numbers (fractions) for further analysis.
    """
    import pandas as pd

    rows = table_rows(summary)
    if not formatted:
        return pd.DataFrame(rows)
    out = []
    for row in rows:
        metric = next(m for m in metrics_for(row["category"]) if m.name == row["metric"])
        stats = {tag: {k: row[f"{tag}_{k}"] for k in ("mean", "ci_low", "ci_high")} for tag in TAGS}
        paired = (None if row["mean_diff"] is None else
                  {"mean_diff": row["mean_diff"], "ci_low": row["diff_ci_low"], "ci_high": row["diff_ci_high"]})
        item = {"category": row["category"], "metric": row["label"], "n": row["base_n"] or row["tuned_n"],
                "base [95% CI]": fmt_interval(stats["base"], metric)}
        if "tuned" in summary.get("results", {}):
            item.update({"tuned [95% CI]": fmt_interval(stats["tuned"], metric),
                         "change [95% CI]": fmt_change(paired, metric), "paired p": fmt_p(row["p_value"]),
                         "tuned is": row["outcome"] or "-"})
        out.append(item)
    return pd.DataFrame(out)


def retention_table(summary: Mapping):
    """:func:`summary_table` for the knowledge benchmarks only (data/mc_knowledge, hub multiple-choice suites,
    custom files): what fine-tuning cost, base vs tuned on the same items."""
    from labkit.eval.suites.registry import label_of

    table = summary_table(summary)
    if table.empty:
        return table
    knowledge = table["category"].map(lambda c: scored_as(c) == "mc_knowledge")
    out = table[knowledge].copy()
    out["category"] = out["category"].map(label_of)
    return out.rename(columns={"category": "benchmark"}).reset_index(drop=True)


# ----------------------------------------------------------------- examples

def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def best_worst(records: Mapping[str, Mapping[str, list[dict]]], k: int = 1, width: int = 160):
    """The k best and k worst examples per category of the tuned model (the base model when alone).

    Ranked by the category's main metric; ties are broken by the change from the base model, so "best"
    prefers examples that fine-tuning fixed and "worst" those it broke. The base prediction is shown alongside.
    """
    import pandas as pd

    tag = "tuned" if records.get("tuned") else "base"
    base = {c: {r["id"]: r for r in rows} for c, rows in records.get("base", {}).items()}
    out = []
    for category, rows in sorted(records.get(tag, {}).items()):
        metric = primary_metric(category)
        scored = [r for r in rows if r.get(metric.name) is not None]
        sign = 1 if metric.higher_is_better else -1

        def key(r: Mapping) -> tuple:
            before = base.get(category, {}).get(r["id"], {}).get(metric.name, r[metric.name])
            return sign * r[metric.name], sign * (r[metric.name] - before), r["id"]

        ranked = sorted(scored, key=key, reverse=True)
        picks = [("best", r) for r in ranked[:k]] + [("worst", r) for r in ranked[::-1][:k] if r not in ranked[:k]]
        for which, r in picks:
            item = {"category": category, "which": which, "id": r["id"],
                    "score": f"{metric.label} {fmt_value(r[metric.name], metric)}", "prompt": _short(r["prompt"], width), f"{tag} reply": _short(r["prediction"], width),
                    "reference": _short(r["reference"], width)}
            if tag == "tuned":
                item["base reply"] = _short(base.get(category, {}).get(r["id"], {}).get("prediction", "-"), width)
            out.append(item)
    return pd.DataFrame(out)
