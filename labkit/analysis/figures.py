"""Figures from run records (see :mod:`labkit.analysis.registry`), never from live models.

Every ``plot_*`` function takes records (plain dicts) and returns a matplotlib ``Figure``. Figures are built
with ``matplotlib.figure.Figure`` rather than ``pyplot`` so that nothing accumulates in a global figure
list and no display is needed (tests, CI). A plot without data returns a figure that says why in its
middle, and carries the reason in ``fig.labkit_no_data``; :func:`labkit.analysis.report.run_report` skips
those with a printed note.
"""

from __future__ import annotations

from labkit.analysis.provenance import short_value

SEED_KEYS = ("train.seed", "eval.seed")
TAG_STYLE = {"base": {"color": "#9e9e9e", "label": "base"}, "tuned": {"color": "#1f77b4", "label": "fine-tuned"}}


# ------------------------------------------------------------------ helpers

def _figure(ncols: int = 1, width: float = 6.5, height: float = 4.2, nrows: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    return fig, list(axes)


def _grid(fig_axes: tuple, used: int):
    """Remove the unused panels of a grid."""
    fig, axes = fig_axes
    for ax in axes[used:]:
        ax.remove()
    return fig, axes[:used]


def _grid_shape(panels: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, panels)
    return -(-panels // cols), cols


def no_data_figure(title: str, reason: str):
    """A figure that says, in words, why there is nothing to plot."""
    fig, (ax,) = _figure(height=2.4)
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, f"No data: {reason}", ha="center", va="center", wrap=True, fontsize=11, color="#555555",
            transform=ax.transAxes)
    fig.labkit_no_data = reason
    return fig


def record_value(record: dict, key: str) -> float | None:
    """A number from a record: a train-summary field (``final_eval_loss``), an evaluation metric
    ``model/category/metric`` (``tuned/arithmetic/exact_match``), or ``model/metric`` averaged over categories."""
    train = record.get("train_summary") or {}
    if key in train:
        value = train[key]
        return float(value) if isinstance(value, (int, float)) else None
    parts = key.split("/")
    rows = record.get("eval_rows") or []
    if len(parts) == 3:
        hits = [r["mean"] for r in rows if (r["model"], r["category"], r["metric"]) == tuple(parts)]
    elif len(parts) == 2:
        hits = [r["mean"] for r in rows if (r["model"], r["metric"]) == tuple(parts)]
    else:
        return None
    hits = [h for h in hits if isinstance(h, (int, float))]
    return sum(hits) / len(hits) if hits else None


def record_interval(record: dict, key: str) -> tuple[float, float] | None:
    """The 95% interval (over evaluation items) of an evaluation metric ``model/category/metric``, if reported."""
    parts = tuple(key.split("/"))
    for row in record.get("eval_rows") or []:
        if len(parts) == 3 and (row["model"], row["category"], row["metric"]) == parts:
            if isinstance(row.get("low"), (int, float)) and isinstance(row.get("high"), (int, float)):
                return row["low"], row["high"]
    return None


def quality_keys(records: list[dict]) -> list[tuple[str, str, str, str]]:
    """What "quality" means in the cross-run figures and tables, as (fine-tuned key, base key, title, y label):
    the validation loss, then each evaluated category's main metric."""
    lower_better = {(p["category"], p["metric"]) for r in records for p in r.get("paired_rows") or []
                    if p.get("higher_is_better") is False}
    keys = [("final_eval_loss", "base_eval_loss", "validation loss", "loss per token (lower is better)")]
    for category, metric in main_metrics(records).items():
        ylabel = _label(metric) + (" (lower is better)" if (category, metric) in lower_better else "")
        keys.append((f"tuned/{category}/{metric}", f"base/{category}/{metric}", f"{category}: {_label(metric)}",
                     ylabel))
    return keys


def mean_std(values: list[float]) -> tuple[float, float, int]:
    from labkit.eval.metrics import mean_std

    stats = mean_std(values)
    return stats["mean"], stats["std"] or 0.0, stats["n"]


def _label(key: str) -> str:
    return key.replace("_", " ")


# ------------------------------------------------------------------ loss curves

def _curve(log: list[dict], kind: str, key: str) -> tuple[list, list]:
    points = [(row["step"], row[key]) for row in log
              if row.get("kind", kind) == kind and isinstance(row.get(key), (int, float)) and "step" in row]
    return [p[0] for p in points], [p[1] for p in points]


def plot_loss_curves(records: list[dict]):
    """Training loss (solid), validation loss (dashed, dots) and the base model's validation loss (dotted) per
    optimizer step; one colour per run."""
    from matplotlib.lines import Line2D

    with_log = [r for r in records if r.get("train_log")]
    if not with_log:
        return no_data_figure("Loss curves", "no run has a training log (logs/train_log.jsonl) yet")
    fig, (ax,) = _figure(width=8.5, height=4.8)
    for color, record in zip(_colors(len(with_log)), with_log):
        steps, loss = _curve(record["train_log"], "train", "loss")
        ax.plot(steps, loss, color=color, lw=1.6, label=record["name"])
        steps, loss = _curve(record["train_log"], "eval", "eval_loss")
        if steps:
            ax.plot(steps, loss, color=color, lw=1.4, ls="--", marker="o", ms=4)
        base = (record.get("train_summary") or {}).get("base_eval_loss")
        if isinstance(base, (int, float)):
            ax.axhline(base, color=color, lw=0.9, ls=":")
    ax.set(title="Training and validation loss", xlabel="optimizer step", ylabel="loss (cross-entropy per token)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", title="run", ncols=1 if len(with_log) <= 16 else 2)
    styles = [Line2D([], [], color="black", lw=1.6, label="training"),
              Line2D([], [], color="black", ls="--", marker="o", ms=4, label="validation"),
              Line2D([], [], color="black", ls=":", label="base model, validation")]
    ax.legend(handles=styles, fontsize=7, loc="upper right")
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ------------------------------------------------------------------ metric bars

def plot_metric_bars(record: dict):
    """Base vs fine-tuned per category, bars with their 95% interval as whiskers.

    Each category's 0-1 metrics share a panel; a metric on another scale (perplexity, a 1-5 judge score)
    gets its own panel, so no scale squashes another.
    """
    panels = metric_panels(record.get("eval_rows") or [])
    if not panels:
        return no_data_figure(f"Metrics of {record['name']}",
                              "no evaluation summary (eval/summary.json): run notebook 04 / `labkit eval`")
    lower_better = {(p["category"], p["metric"]) for p in record.get("paired_rows") or []
                    if p.get("higher_is_better") is False}
    nrows, ncols = _grid_shape(len(panels))
    fig, axes = _grid(_figure(ncols=ncols, nrows=nrows, width=4.6, height=3.6), len(panels))
    for ax, (title, rows) in zip(axes, panels):
        _metric_panel(ax, rows, title, lower_better)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Evaluation of {record['name']}: base vs fine-tuned (bars: mean, whiskers: 95% interval)")
    return fig


def _is_fraction(rows: list[dict]) -> bool:
    values = [v for r in rows for v in (r["mean"], r.get("low"), r.get("high")) if v is not None]
    return all(0 <= v <= 1 for v in values)


def metric_panels(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """(title, rows) per panel: a category's 0-1 metrics together, each other metric alone."""
    panels = []
    for category in dict.fromkeys(r["category"] for r in rows):
        in_category = [r for r in rows if r["category"] == category]
        metrics = list(dict.fromkeys(r["metric"] for r in in_category))
        fractions = [m for m in metrics if _is_fraction([r for r in in_category if r["metric"] == m])]
        if fractions:
            panels.append((category, [r for r in in_category if r["metric"] in fractions]))
        panels += [(f"{category}: {_label(m)}", [r for r in in_category if r["metric"] == m])
                   for m in metrics if m not in fractions]
    return panels


def _metric_panel(ax, rows: list[dict], title: str, lower_better: set) -> None:
    import numpy as np

    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    tags = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / len(tags)
    x = np.arange(len(metrics))
    for i, tag in enumerate(tags):
        by_metric = {r["metric"]: r for r in rows if r["model"] == tag}
        means = [by_metric[m]["mean"] if m in by_metric else np.nan for m in metrics]
        errors = [[_err(by_metric.get(m), "low") for m in metrics], [_err(by_metric.get(m), "high") for m in metrics]]
        style = TAG_STYLE.get(tag, {"label": tag})
        ax.bar(x + (i - (len(tags) - 1) / 2) * width, means, width, yerr=errors, capsize=3, **style)
    labels = [_label(m) + (" (lower is better)" if (rows[0]["category"], m) in lower_better else "") for m in metrics]
    ax.set_xticks(x, labels, rotation=15 if len(metrics) > 2 else 0, ha="right" if len(metrics) > 2 else "center",
                  fontsize=8)
    ax.set(title=title, ylabel="score (0-1)" if _is_fraction(rows) else _label(metrics[0]))
    if _is_fraction(rows):
        ax.set_ylim(0, 1.05)  # one fixed scale, so panels compare at a glance and zeros do not look like data
    ax.grid(axis="y", alpha=0.3)


def _err(row: dict | None, side: str) -> float:
    """Distance from the mean to the interval end (0 when the summary gives no interval)."""
    if not row or row.get(side) is None:
        return 0.0
    return abs(row[side] - row["mean"])


# ------------------------------------------------------------------ speed and memory

def plot_throughput_memory(records: list[dict], by: list[str] | None = None):
    """Training throughput (tokens/s) and peak memory (GPU memory where measured, else process RSS): one bar
    per run, or with ``by`` (settings, e.g. an experiment's grid keys) one bar per value, mean ± std over runs."""
    trained = [r for r in records if r.get("train_summary")]
    if not trained:
        return no_data_figure("Throughput and memory", "no run has a training summary (train_summary.json)")
    use_gpu = any(isinstance(r["train_summary"].get("peak_gpu_mb"), (int, float)) for r in trained)
    groups: dict[str, list[dict]] = {}
    for record in trained:
        settings = record["settings"]
        label = ", ".join(f"{k.split('.')[-1]}={short_value(settings.get(k))}" for k in by) if by else record["name"]
        groups.setdefault(label, []).append(record)
    fig, (left, right) = _figure(ncols=2, width=5.5, height=max(3.0, 0.45 * len(groups) + 1.5))
    memory_key = "peak_gpu_mb" if use_gpu else "peak_rss_mb"
    for ax, key, color in ((left, "tokens_per_s", "#1f77b4"), (right, memory_key, "#ff7f0e")):
        stats = [_stats([record_value(r, key) for r in runs]) for runs in groups.values()]
        ax.barh(list(groups), [m for m, _ in stats], xerr=[sd for _, sd in stats] if by else None, capsize=4,
                color=color)
        ax.set_ylabel(" / ".join(by) if by else "run")
        ax.grid(axis="x", alpha=0.3)
        ax.invert_yaxis()
    left.set(title="Training throughput", xlabel="tokens / s (non-padding)")
    right.set(title="Peak memory", xlabel="peak GPU memory (MiB)" if use_gpu else "peak process RSS (MiB)")
    if by:
        counts = sorted({len(runs) for runs in groups.values()})
        fig.suptitle(f"Mean ± std over {'/'.join(map(str, counts))} run(s) per setting")
    return fig


# ------------------------------------------------------------------ model size

def plot_model_size(records: list[dict]):
    """Base vs fine-tuned per model name (ordered by parameter count): validation loss, and each category's
    main metric. Several runs of one model are averaged (whiskers: std over runs); a model with one run shows
    its metric's 95% interval over the evaluation items instead (validation loss has none)."""
    trained = [r for r in records if r.get("train_summary")]
    by_model: dict[str, list[dict]] = {}
    for record in trained:
        by_model.setdefault(record["settings"].get("model.name", "?"), []).append(record)
    if not by_model:
        return no_data_figure("Model size vs fine-tuning", "no run has a training summary (train_summary.json)")
    models = sorted(by_model, key=lambda m: (_params(by_model[m]) or 0, m))
    panels = quality_keys(trained)
    nrows, ncols = _grid_shape(len(panels))
    fig, axes = _grid(_figure(ncols=ncols, nrows=nrows, width=5.0, height=3.8), len(panels))
    for ax, (tuned_key, base_key, title, ylabel) in zip(axes, panels):
        _paired_bars(ax, models, by_model, base_key, tuned_key)
        ax.set(title=title, ylabel=ylabel)
    axes[0].legend(fontsize=8)
    several = any(len(runs) > 1 for runs in by_model.values())
    whiskers = "std over runs" if several and all(len(r) > 1 for r in by_model.values()) else (
        "95% interval over evaluation items; validation loss: one value" if not several else
        "std over runs, or the 95% interval over evaluation items for a model with one run")
    fig.suptitle(f"Model size vs fine-tuning (models ordered by parameter count; whiskers: {whiskers})")
    return fig


def main_metrics(records: list[dict]) -> dict[str, str]:
    """category -> its main metric (the evaluation suite's primary metric, when the run reports it)."""
    from labkit.eval.scoring import primary_metric

    reported: dict[str, list[str]] = {}
    for record in records:
        for row in record.get("eval_rows") or []:
            reported.setdefault(row["category"], []).append(row["metric"])
    return {category: primary_metric(category).name if primary_metric(category).name in names else names[0]
            for category, names in sorted(reported.items())}


def _params(records: list[dict]) -> int | None:
    """The model's own parameter count (the total the training summary reports, less the LoRA adapter's)."""
    counts = [(r["train_summary"].get("trainable_params") or {}) for r in records]
    totals = [c["total"] - (c.get("trainable") or 0) for c in counts if c.get("total")]
    return max(totals) if totals else None


def _paired_bars(ax, models: list[str], by_model: dict, base_key: str, tuned_key: str) -> None:
    import numpy as np

    x = np.arange(len(models))
    for offset, key, tag in ((-0.2, base_key, "base"), (0.2, tuned_key, "tuned")):
        means, below, above = [], [], []
        for model in models:
            runs = by_model[model]
            mean, std = _stats([record_value(r, key) for r in runs])
            interval = record_interval(runs[0], key) if len(runs) == 1 else None
            means.append(mean)
            below.append(mean - interval[0] if interval else std)
            above.append(interval[1] - mean if interval else std)
        ax.bar(x + offset, means, 0.4, yerr=[below, above], capsize=3, **TAG_STYLE[tag])
    labels = [f"{m}\n({_params(by_model[m]) / 1e6:.0f}M parameters)" if _params(by_model[m]) else m for m in models]
    ax.set_xticks(x, labels, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _stats(values: list[float | None]) -> tuple[float, float]:
    import math

    numbers = [v for v in values if v is not None]
    if not numbers:
        return math.nan, 0.0
    mean, std, _ = mean_std(numbers)
    return mean, std
