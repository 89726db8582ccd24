"""Sweep figures: a metric against one swept setting (data size, LoRA vs rsLoRA, any grid key), mean ± std
over seeds, base and fine-tuned, from run records only."""

from __future__ import annotations

from typing import Iterable

from labkit.analysis.figures import (SEED_KEYS, TAG_STYLE, _colors, _figure, _grid, _grid_shape, _label, no_data_figure,
                                     quality_keys, record_value)
from labkit.analysis.provenance import short_value
from labkit.analysis.registry import varying_settings

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
                                           "run an experiment over data.limit, e.g. labkit.analysis.experiment")
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
