"""Figures and a markdown summary from run records (see :mod:`labkit.registry`), never from live models.

Every ``plot_*`` function takes records (plain dicts) and returns a matplotlib ``Figure``. Figures are built
with ``matplotlib.figure.Figure`` rather than ``pyplot`` so that nothing accumulates in a global figure
list and no display is needed (tests, CI). A plot without data returns a figure that says why in its
middle, and carries the reason in ``fig.labkit_no_data``; :func:`run_report` skips those with a printed note.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from labkit.provenance import provenance_lines, short_value
from labkit.registry import collect, eval_table, load_record, runs_table, varying_settings
from labkit.runs import Run, labkit_home

SEED_KEYS = ("train.seed", "eval.seed")
TAG_STYLE = {"base": {"color": "#9e9e9e", "label": "base"}, "tuned": {"color": "#1f77b4", "label": "fine-tuned"}}


def reports_dir() -> Path:
    """``$LABKIT_REPORTS``, else the repository's reports/ folder, else ``$LABKIT_HOME/reports`` (installed copy)."""
    if os.environ.get("LABKIT_REPORTS"):
        return Path(os.environ["LABKIT_REPORTS"]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "reports"
    return labkit_home() / "reports"


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
    from labkit.metrics import mean_std

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
    from labkit.evalsuite.scoring import primary_metric

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


# ------------------------------------------------------------------ sweeps (data size, LoRA vs rsLoRA)

def sweep_table(records: list[dict], x: str, y: str, by: Iterable[str] = ()):
    """Mean ± std of ``y`` over seeds, per value of setting ``x``, one line per combination of ``by`` and of the
    other settings in which the runs differ (so only like-for-like runs are averaged)."""
    import pandas as pd

    usable = [r for r in records if r["settings"].get(x) is not None and record_value(r, y) is not None]
    fixed = [k for k in varying_settings(usable) if k not in (x, *SEED_KEYS, *by)]
    line_keys = [*by, *fixed]
    rows = []
    for record in usable:
        line = ", ".join(f"{k.split('.')[-1]}={short_value(record['settings'].get(k))}" for k in line_keys) or "runs"
        rows.append({"line": line, "x": record["settings"][x], "y": record_value(record, y), "run": record["name"]})
    if not rows:
        return pd.DataFrame(columns=["line", "x", "mean", "std", "n", "runs"])
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["line", "x"], sort=True)
    out = grouped["y"].agg(["mean", "count"]).rename(columns={"count": "n"})
    out["std"] = grouped["y"].std(ddof=1).fillna(0.0)  # one seed: no spread to show
    out["runs"] = grouped["run"].agg(lambda names: ",".join(sorted(names)))
    return out.reset_index()[["line", "x", "mean", "std", "n", "runs"]]


def _plot_sweep(table, title: str, xlabel: str, ylabel: str, log_x: bool = False):
    fig, (ax,) = _figure(width=7)
    for line, part in table.groupby("line", sort=True):
        part = part.sort_values("x")
        ax.errorbar(part["x"], part["mean"], yerr=part["std"], marker="o", capsize=4, label=line)
        for _, point in part.iterrows():
            ax.annotate(f"n={point['n']}", (point["x"], point["mean"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color="#555555")
    if log_x:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.set_xticks(sorted(table["x"].unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_data_size(records: list[dict], y: str | None = None):
    """Quality against ``data.limit`` (training rows per source), mean ± std over seeds.

    By default one panel per quality measure (validation loss, each category's main metric; see
    :func:`quality_keys`), fine-tuned and base; with ``y`` (e.g. ``"final_eval_loss"``) that one number only."""
    if y is None:
        return plot_sweep(records, "data.limit", "Data size", "data.limit (training rows per source)")
    table = _swept(records, "data.limit", y)
    if table.empty:
        return no_data_figure("Data size", f"no runs that differ only in data.limit (with '{y}'); "
                                           "run an experiment over data.limit, e.g. labkit.experiment")
    wide = table["x"].max() > 10 * table["x"].min()
    return _plot_sweep(table, f"Data size vs {_label(y)} (mean ± std over seeds)",
                       "data.limit (training rows per source)", _label(y), log_x=wide)


def _swept(records: list[dict], x: str, y: str):
    """:func:`sweep_table`, keeping only lines with at least two values of ``x`` (a curve, not a point)."""
    table = sweep_table(records, x, y)
    return table[table.groupby("line")["x"].transform("nunique") >= 2] if not table.empty else table


def plot_sweep(records: list[dict], x: str, title: str | None = None, xlabel: str | None = None):
    """Every quality measure (:func:`quality_keys`) against setting ``x``: one panel each, fine-tuned (solid)
    and base (dashed), mean ± std over seeds with the number of runs per point."""
    panels = [(keys, _swept(records, x, keys[0]), _swept(records, x, keys[1])) for keys in quality_keys(records)]
    panels = [p for p in panels if not p[1].empty]
    title = title or _label(x)
    if not panels:
        return no_data_figure(title, f"no runs that differ only in {x} (and the seed); run an experiment over {x}, "
                                     f"e.g. `labkit experiment --grid {x}=...`")
    nrows, ncols = _grid_shape(len(panels))
    fig, axes = _grid(_figure(ncols=ncols, nrows=nrows, width=4.8, height=3.7), len(panels))
    for ax, ((_, _, panel_title, ylabel), tuned, base) in zip(axes, panels):
        _sweep_panel(ax, tuned, base)
        ax.set(title=panel_title, ylabel=ylabel, xlabel=xlabel or x)
    axes[0].legend(fontsize=7)
    counts = sorted({n for _, tuned, _ in panels for n in tuned["n"]})
    per_point = f"{counts[0]} runs per point" if len(counts) == 1 else "n = runs per point"
    fig.suptitle(f"{title}: mean ± std over seeds ({per_point}); solid: fine-tuned, dashed: base model")
    return fig


def _sweep_panel(ax, tuned, base) -> None:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    lines = sorted(tuned["line"].unique())
    single = len(lines) == 1
    colors = [TAG_STYLE["tuned"]["color"]] if single else _colors(len(lines))
    numeric = is_numeric_dtype(tuned["x"]) and not is_bool_dtype(tuned["x"])
    for color, line in zip(colors, lines):
        for frame, tag in ((tuned, "tuned"), (base, "base")):
            part = frame[frame["line"] == line].sort_values("x")
            if part.empty:
                continue
            xs = list(part["x"]) if numeric else [str(v) for v in part["x"]]
            label = TAG_STYLE[tag]["label"] + ("" if single else f", {line}")
            style = {"color": TAG_STYLE["base"]["color"] if single and tag == "base" else color,
                     "ls": "-" if tag == "tuned" else "--", "marker": "o" if tag == "tuned" else "s",
                     "alpha": 1.0 if tag == "tuned" else 0.8}
            ax.errorbar(xs, part["mean"], yerr=part["std"], capsize=4, ms=5, label=label, **style)
            if tag == "tuned" and tuned["n"].nunique() > 1:  # equal counts are given once, in the title
                for x_value, (_, point) in zip(xs, part.iterrows()):
                    ax.annotate(f"n={point['n']}", (x_value, point["mean"]), textcoords="offset points",
                                xytext=(4, 4), fontsize=7, color="#555555")
    if numeric:
        values = sorted(tuned["x"].unique())
        if values[0] > 0 and values[-1] > 10 * values[0]:
            from matplotlib.ticker import NullFormatter, ScalarFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(values)
    ax.grid(alpha=0.3)


def plot_lora_vs_rslora(records: list[dict], y: str = "final_eval_loss"):
    """``y`` against the LoRA rank, LoRA vs rsLoRA (scale alpha/r vs alpha/sqrt(r)), mean ± std over seeds."""
    table = sweep_table(records, "lora.r", y, by=["lora.use_rslora"])
    if not table.empty:  # keep only settings that were run with both variants: a like-for-like comparison
        parts = table["line"].str.split(", ", n=1)
        table = table.assign(variant=parts.str[0], rest=parts.map(lambda p: p[1] if len(p) > 1 else ""))
        table = table[table.groupby("rest")["variant"].transform("nunique") == 2]
    if table.empty:
        return no_data_figure("LoRA vs rsLoRA", f"no runs with both lora.use_rslora=false and true (with '{y}') "
                                                "and otherwise equal settings; run an experiment over "
                                                "lora.use_rslora and lora.r")
    table = table.assign(line=table["variant"].map({"use_rslora=True": "rsLoRA", "use_rslora=False": "LoRA"})
                         + table["rest"].map(lambda rest: f", {rest}" if rest else ""))
    return _plot_sweep(table, f"LoRA vs rsLoRA: {_label(y)} by rank (mean ± std over seeds)", "LoRA rank r",
                       _label(y), log_x=True)


# ------------------------------------------------------------------ the report

def all_figures(records: list[dict], current: dict | None = None) -> dict[str, Any]:
    """Every figure of the report, by file stem; ``current`` is the run whose metrics are shown as bars."""
    return {
        "loss_curves": plot_loss_curves(records),
        "metrics": plot_metric_bars(current) if current else no_data_figure("Metrics", "no current run given"),
        "throughput_memory": plot_throughput_memory(records),
        "model_size": plot_model_size(records),
        "data_size": plot_data_size(records),
        "lora_vs_rslora": plot_lora_vs_rslora(records),
    }


def save_figure(fig, folder: Path, stem: str) -> list[Path]:
    """PNG and SVG; the SVG without a date and with fixed element ids, so a re-made figure diffs as unchanged."""
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=130)
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        fig.savefig(paths[1], metadata={"Date": None})
    return paths


def save_figures(figures: dict[str, Any], folder: Path) -> tuple[list[Path], list[str], dict[str, str]]:
    """Save every figure that has data; returns (files, saved stems, skipped stem -> why)."""
    files, saved, skipped = [], [], {}
    for stem, fig in figures.items():
        reason = getattr(fig, "labkit_no_data", None)
        if reason:
            print(f"labkit: skipping figure '{stem}': {reason}")
            skipped[stem] = reason
            continue
        files += save_figure(fig, folder, stem)
        saved.append(stem)
    return files, saved, skipped


def markdown_table(frame) -> str:
    """A GitHub markdown table (written here because pandas' to_markdown needs the extra 'tabulate' package)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4g}"
        return "" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


SUMMARY_COLUMNS = ("run", "model", "changed", "steps", "tokens_per_s", "peak_rss_mb", "peak_gpu_mb",
                   "final_train_loss", "base_eval_loss", "final_eval_loss")


def summary_markdown(records: list[dict], current: dict | None, figures: list[str], skipped: dict[str, str],
                     commands: list[str] | None = None) -> str:
    table = runs_table(records)
    table = table[[c for c in SUMMARY_COLUMNS if c in table.columns]].dropna(axis=1, how="all")
    lines = ["# labkit report", "", f"Runs: {len(records)}", "", "## Runs", "", markdown_table(table), ""]
    if current:
        lines += [f"## Evaluation of {current['name']}", ""]
        metrics = eval_table([current])
        lines += [markdown_table(metrics.drop(columns="run")) if not metrics.empty
                  else "No evaluation summary yet (run notebook 04 / `labkit eval`).", ""]
        if current["missing"]:
            lines += ["Missing for this run:", "", *[f"- {m}" for m in current["missing"]], ""]
    lines += figure_lines(figures, skipped)
    lines += provenance_lines(records, commands) if commands else []
    return "\n".join(lines)


def figure_lines(figures: list[str], skipped: dict[str, str]) -> list[str]:
    lines = ["## Figures", "", *[f"![{stem}]({stem}.png)" for stem in figures], ""] if figures else []
    if skipped:
        lines += ["Skipped (no data):", "", *[f"- {stem}: {why}" for stem, why in skipped.items()], ""]
    return lines


def run_report(cfg, run: Run, folder: Path | None = None, records: list[dict] | None = None,
               commands: list[str] | None = None, sweeps: bool = True) -> dict:
    """Write every figure with data (PNG + SVG) and ``summary.md`` to ``reports_dir()/<run>/``.

    Cross-run figures use ``records`` (default: every run under the runs root); the metric bars show ``run``.
    Only reads the runs (``cfg`` is not used; it is kept for the stage-function signature). With
    ``commands``, ``summary.md`` ends with them and the setup (preset, machine, dates, versions); with
    ``sweeps=False`` the data-size and LoRA-vs-rsLoRA figures are left out (for one run's own report). Returns
    ``{"dir", "files", "skipped"}`` (skipped: figure -> why it had no data).
    """
    records = collect() if records is None else records
    current = next((r for r in records if r["name"] == run.name), None) or load_record(run)
    folder = Path(folder) if folder else reports_dir() / run.name
    figures = all_figures(records, current)
    if not sweeps:  # a report of one run alone: the sweeps need several runs, so they are not listed as missing
        figures = {stem: fig for stem, fig in figures.items() if stem not in ("data_size", "lora_vs_rslora")}
    files, saved, skipped = save_figures(figures, folder)
    summary = folder / "summary.md"
    folder.mkdir(parents=True, exist_ok=True)
    summary.write_text(summary_markdown(records, current, saved, skipped, commands), encoding="utf-8")
    files.append(summary)
    return {"dir": str(folder), "files": [str(f) for f in files], "skipped": skipped}
