"""Training plots and tables for notebook 02, read from the run folder only (they work after a kernel restart)."""

from __future__ import annotations

from labkit.train.callbacks import read_log
from labkit.runs import Run

TRAIN_LOG = ("logs", "train_log.jsonl")


def training_records(run: Run) -> tuple[list[dict], list[dict]]:
    """The training-step and evaluation records of ``run/logs/train_log.jsonl``."""
    path = run.path(*TRAIN_LOG)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train first (notebook 02 or `labkit train --run {run.name}`)")
    records = read_log(path)
    return [r for r in records if r.get("kind") == "train"], [r for r in records if r.get("kind") == "eval"]


def plot_training(run: Run):
    """Loss curves (train, validation, and the base model's validation loss) and speed / memory per step."""
    import matplotlib.pyplot as plt

    train, evals = training_records(run)
    summary = run.load("train_summary") if run.has("train_summary") else {}
    base, final = summary.get("base_eval_loss"), summary.get("final_eval_loss")
    fig, (loss_ax, speed_ax, mem_ax) = plt.subplots(1, 3, figsize=(15, 4))
    steps = [r["step"] for r in train]
    loss_ax.plot(steps, [r["loss"] for r in train], label="train loss", alpha=0.8)
    if evals:
        # The Trainer averages per-batch means; batches of short answers weigh as much as long ones, so its
        # numbers sit apart from the token-weighted base / final losses below. Both are shown, labelled.
        loss_ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-",
                     label="validation loss (Trainer: mean of batch means)")
    if base is not None:
        loss_ax.axhline(base, color="grey", linestyle="--", label=f"base model, validation, per token {base:.3f}")
    if final is not None and steps:
        loss_ax.plot([steps[-1]], [final], "k*", markersize=12, label=f"after training, validation, per token {final:.3f}")
    loss_ax.set(title="loss per trained token", xlabel="step", ylabel="cross-entropy")
    loss_ax.legend()
    speed_ax.plot(steps, [r["tokens_per_s"] for r in train], label="all tokens / s")
    speed_ax.plot(steps, [r["trained_tokens_per_s"] for r in train], label="trained tokens / s")
    speed_ax.set(title="throughput", xlabel="step", ylabel="tokens per second")
    speed_ax.legend()
    mem_ax.plot(steps, [r["rss_mb"] for r in train], label="process RSS (MiB)")
    mem_ax.plot(steps, [r["peak_rss_mb"] for r in train], "--", label="peak process RSS (MiB)")
    if any("peak_gpu_mb" in r for r in train):
        mem_ax.plot(steps, [r.get("peak_gpu_mb") for r in train], label="peak GPU memory (MiB)")
    mem_ax.set(title="memory", xlabel="step", ylabel="MiB")
    mem_ax.legend()
    fig.tight_layout()
    return fig


SUMMARY_ROWS = {  # summary key -> (label, format)
    "steps": ("optimizer steps", "{:,}"), "epochs": ("epochs", "{:.2f}"), "train_rows": ("training rows", "{:,}"),
    "wall_time_s": ("wall time (s)", "{:.0f}"), "train_seconds": ("time in steps (s)", "{:.0f}"),
    "steps_per_s": ("steps / s", "{:.3f}"), "tokens_per_s": ("tokens / s (non-padding)", "{:,.0f}"),
    "trained_tokens_per_s": ("trained tokens / s", "{:,.0f}"), "trained_tokens": ("trained tokens", "{:,}"),
    "peak_rss_mb": ("peak process RSS (MiB)", "{:,.0f}"), "peak_gpu_mb": ("peak GPU memory (MiB)", "{:,.0f}"),
    "base_eval_loss": ("validation loss, base model", "{:.4f}"),
    "final_eval_loss": ("validation loss, after training", "{:.4f}"),
    "final_train_loss": ("last training loss", "{:.4f}"), "empty_batches": ("batches without trained tokens", "{}"),
    "adapter_path": ("adapter", "{}"),
}


def training_table(run: Run):
    """The training summary as a two-column table (pandas), for display."""
    import pandas as pd

    summary = run.load("train_summary")
    rows = [(label, fmt.format(summary[key])) for key, (label, fmt) in SUMMARY_ROWS.items()
            if summary.get(key) is not None]
    base, final = summary.get("base_eval_loss"), summary.get("final_eval_loss")
    if base is not None and final is not None:
        rows.insert(rows.index(next(r for r in rows if r[0].endswith("after training"))) + 1,
                    ("change in validation loss", f"{final - base:+.4f} ({100 * (final - base) / base:+.1f}%)"))
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def config_table(cfg, *sections: str):
    """The settings of the given config sections with their documentation (pandas), for display."""
    import dataclasses

    import pandas as pd

    rows = []
    for name in sections:
        section = getattr(cfg, name)
        for f in dataclasses.fields(section):
            rows.append((f"{name}.{f.name}", repr(getattr(section, f.name)), f.metadata.get("doc", "")))
    return pd.DataFrame(rows, columns=["setting", "value", "meaning"]).set_index("setting")
