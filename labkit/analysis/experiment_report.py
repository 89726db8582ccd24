"""An experiment's report (``labkit experiment``): its grid of cells, the figure that answers its question, quality
and cost tables with seed spread, and how to reproduce it. Figures and tables come from :mod:`labkit.analysis.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.analysis.provenance import provenance_lines, run_seconds, short_value
from labkit.analysis.registry import collect
from labkit.analysis.figures import (mean_std, plot_loss_curves, plot_model_size, plot_throughput_memory, quality_keys,
                                     record_value)
from labkit.analysis.report import figure_lines, markdown_table, reports_dir, save_figures
from labkit.analysis.sweeps import plot_data_size, plot_lora_vs_rslora, plot_sweep


def question_figures(records: list[dict], keys: list[str]) -> dict[str, Any]:
    """The figure that answers what an experiment over ``keys`` asks: model size for ``model.name``, the
    data-size curve for ``data.limit``, else quality against each varied setting."""
    figures = {}
    if set(keys) == {"lora.r", "lora.use_rslora"}:
        return {"lora_vs_rslora": plot_lora_vs_rslora(records)}
    for key in keys:
        if key == "model.name":
            figures["model_size"] = plot_model_size(records)
        elif key == "data.limit":
            figures["data_size"] = plot_data_size(records)
        else:
            figures[f"sweep_{key.replace('.', '_')}"] = plot_sweep(records, key)
    return figures


def _plus_minus(values: list) -> str:
    """``mean ± std`` (std over runs, n - 1; both to the mean's precision), or one value where all are equal;
    empty when there is none."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and v == v]
    if not numbers:
        return ""
    mean, std, n = mean_std(numbers)
    digits = 0 if abs(mean) >= 100 else 1 if abs(mean) >= 10 else 3
    return f"{mean:.{digits}f}" if len(set(numbers)) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def grid_table(rows: list[dict], keys: list[str]):
    """Rows grouped by ``keys`` (in first-seen order): n, then ``mean ± std`` of every other column."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    values = [c for c in frame.columns if c not in keys]
    out = []
    for point, part in frame.groupby(keys, sort=False, dropna=False):
        point = point if isinstance(point, tuple) else (point,)
        out.append({**dict(zip(keys, point)), "n": len(part),
                    **{c: _plus_minus(part[c].tolist()) for c in values}})
    return pd.DataFrame(out)


def quality_rows(records: list[dict], keys: list[str]) -> list[dict]:
    """Per run and per model version (base, fine-tuned): the grid values and every quality measure."""
    measures = quality_keys(records)
    rows = []
    for record in records:
        point = {k: short_value(record["settings"].get(k)) for k in keys}
        for tag, column in ((1, "base"), (0, "fine-tuned")):
            rows.append({**point, "model version": column,
                         **{title: record_value(record, pair[tag]) for *pair, title, _ in measures}})
    return rows


def cost_rows(records: list[dict], keys: list[str]) -> list[dict]:
    """Per run: the grid values, training steps, time, speed, memory, and the whole cell's time."""
    rows = []
    for record in records:
        train = record.get("train_summary") or {}
        gpu = train.get("peak_gpu_mb")
        rows.append({**{k: short_value(record["settings"].get(k)) for k in keys}, "steps": train.get("steps"),
                     "training time (min)": (train.get("wall_time_s") or 0) / 60 or None,
                     "tokens/s": train.get("tokens_per_s"), "trained tokens/s": train.get("trained_tokens_per_s"),
                     "peak GPU memory (GiB)" if gpu else "peak RSS (GiB)":
                         (gpu or train.get("peak_rss_mb") or 0) / 1024 or None,
                     "run time (min)": (run_seconds(record) or 0) / 60 or None})
    return rows


def experiment_report(experiment, folder: Path | None = None, commands: list[str] | None = None,
                      title: str | None = None) -> dict:
    """Write an experiment's report to ``reports_dir()/<name>/`` from its finished cells only: loss curves,
    throughput and memory, the figure that answers its question (:func:`question_figures`), and
    ``summary.md`` (results per grid point, mean ± std over seeds; cost; every cell's status; how to
    reproduce; setup). Reads the runs, never changes them. Returns ``{"dir", "files", "skipped"}``."""
    status = experiment.status()
    order = {name: i for i, name in enumerate(status)}
    records = sorted(collect(experiment.root, [n for n, s in status.items() if s == "done"]),
                     key=lambda r: order[r["name"]])
    keys = list(experiment.grid)
    folder = Path(folder) if folder else reports_dir() / experiment.name
    figures = {"loss_curves": plot_loss_curves(records), "throughput_memory": plot_throughput_memory(records, keys),
               **question_figures(records, keys)}
    files, saved, skipped = save_figures(figures, folder)
    text = experiment_markdown(experiment, records, status, saved, skipped, commands or [experiment.command()],
                               title)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.md").write_text(text, encoding="utf-8")
    files.append(folder / "summary.md")
    print(f"labkit: report of experiment {experiment.name} ({len(records)} finished runs) -> {folder}")
    return {"dir": str(folder), "files": [str(f) for f in files], "skipped": skipped}


def experiment_markdown(experiment, records: list[dict], status: dict[str, str], figures: list[str],
                        skipped: dict[str, str], commands: list[str], title: str | None = None) -> str:
    keys = list(experiment.grid)
    grid_text = "; ".join(f"`{k}` = {', '.join(map(short_value, v))}" for k, v in experiment.grid.items())
    overrides = experiment.override_items()
    lines = [f"# Experiment `{experiment.name}`", ""] + ([title, ""] if title else [])
    lines += [f"Grid: {grid_text}; seeds {', '.join(map(str, experiment.seeds))}; preset `{experiment.preset}`"
              + "".join(f", `{k}={v}`" for k, v in overrides) + ".",
              f"Finished: {len(records)} of {len(status)} runs.", ""]
    unfinished = [name for name, state in status.items() if state != "done"]
    if unfinished:
        lines += [f"**Not finished yet** (run the command below again to resume): {', '.join(unfinished)}", ""]
    if records:
        lines += ["## Results", "", "Mean ± std over seeds (std with n - 1); n = finished runs per grid point. "
                  + validation_words(experiment) + evaluation_words(experiment), "",
                  markdown_table(grid_table(quality_rows(records, keys), [*keys, "model version"])), "",
                  "## Cost", "", markdown_table(grid_table(cost_rows(records, keys), keys)), ""]
    lines += ["## Runs", "", markdown_table(_cells_table(experiment, status, records)), ""]
    lines += figure_lines(figures, skipped)
    lines += provenance_lines(records, commands) if records else ["## How to reproduce", "", "```bash",
                                                                  *commands, "```", ""]
    return "\n".join(lines)


def validation_words(experiment) -> str:
    """How the experiment's validation loss was measured: one fixed set for all cells, or each run's own split."""
    settings = {(c.data.val_rows, c.data.val_seed, tuple(c.data.sources)) for c in experiment.configs.values()}
    if len(settings) == 1 and next(iter(settings))[0] is not None:
        rows, seed, _ = next(iter(settings))
        return (f"Validation loss is measured on one fixed validation set: data.val_rows={rows} rows of each source, "
                f"carved with data.val_seed={seed} before data.limit applies, the same rows for every grid point and "
                "seed (so the base model's validation loss is the same number in every row).")
    return ("Validation loss is measured on each run's own validation split (data.val_fraction of the training rows "
            "its seed picked, or differing data.val_rows settings), so the base model's value moves too: it mixes "
            "which rows with what the grid varies.")


def evaluation_words(experiment) -> str:
    if getattr(experiment, "evaluates", True):
        return " The evaluation metrics use the same held-out test items for every run."
    return (" This experiment's cells skip the task evaluation (validation loss answers its question); "
            "`labkit eval --preset PRESET --run RUN` adds it to any cell.")


def _cells_table(experiment, status: dict[str, str], records: list[dict]):
    import pandas as pd

    by_name = {r["name"]: r for r in records}
    rows = []
    for cell in experiment.cells():
        record = by_name.get(cell.run_name)
        seconds = run_seconds(record) if record else None
        rows.append({"run": cell.run_name, "seed": cell.seed, "status": status[cell.run_name],
                     "validation loss": record_value(record, "final_eval_loss") if record else None,
                     "run time (min)": seconds / 60 if seconds else None})
    return pd.DataFrame(rows)
