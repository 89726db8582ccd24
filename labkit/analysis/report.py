"""A run's report: every figure with data (PNG + SVG) and a markdown ``summary.md``, from run records only.

The figures themselves are in :mod:`labkit.analysis.figures`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labkit.analysis.figures import (no_data_figure, plot_loss_curves, plot_metric_bars, plot_model_size,
                                     plot_throughput_memory)
from labkit.analysis.sweeps import plot_data_size, plot_lora_vs_rslora
from labkit.analysis.provenance import provenance_lines
from labkit.analysis.registry import collect, eval_table, load_record, runs_table
from labkit.runs import Run, labkit_home

def reports_dir() -> Path:
    """``$LABKIT_REPORTS``, else the repository's reports/ folder, else ``$LABKIT_HOME/reports`` (installed copy)."""
    if os.environ.get("LABKIT_REPORTS"):
        return Path(os.environ["LABKIT_REPORTS"]).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "reports"
    return labkit_home() / "reports"


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
