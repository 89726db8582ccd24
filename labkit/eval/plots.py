"""Evaluation plots: each category's main metric with its 95% interval, base vs fine-tuned."""

from __future__ import annotations

from collections.abc import Mapping

from labkit.eval.scoring import primary_metric

COLORS = {"base": "#4C72B0", "tuned": "#DD8452"}


def plot_intervals(summary: Mapping, ax=None):
    """Horizontal error bars, one row per category (its main metric, in %), base and tuned side by side.

    Metrics that are not fractions (perplexity, a judge's 1-5 score) are left to the table.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    results = summary.get("results", {})
    categories = sorted({c for tag in results.values() for c in tag if primary_metric(c).percent}, reverse=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * max(1, len(categories))))
    tags = [t for t in ("base", "tuned") if t in results]
    offsets = {"base": 0.15, "tuned": -0.15} if len(tags) == 2 else {tags[0]: 0.0} if tags else {}
    for tag in tags:
        labelled = False
        for row, category in enumerate(categories):
            stats = results[tag].get(category, {}).get("metrics", {}).get(primary_metric(category).name)
            if not stats or stats.get("mean") is None:
                continue
            mean, low, high = (100 * stats[k] for k in ("mean", "ci_low", "ci_high"))
            ax.errorbar(mean, row + offsets[tag], xerr=[[mean - low], [high - mean]], fmt="o", capsize=4,
                        color=COLORS[tag], label=None if labelled else tag)
            labelled = True
    ax.set_yticks(range(len(categories)))
    ax.set_yticklabels([f"{c.replace('_', ' ')}\n({primary_metric(c).label})" for c in categories], fontsize=8)
    ax.set_xlabel("score, % (dots: mean; bars: 95% bootstrap interval)")
    ax.set_xlim(-2, 102)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(f"{summary.get('model', '')}: base vs fine-tuned on held-out data")
    ax.figure.tight_layout()
    return ax.figure
