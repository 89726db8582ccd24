"""The run registry: what every run under ``runs_root()`` wrote, gathered into plain records and one table.

A *record* is a plain dict built only from a run's files (never from a live model), so analysis works after a
kernel restart, on another machine, or on fabricated files in tests::

    {"name", "dir", "preset", "config" (nested dict), "settings" (flat ``section.field`` dict),
     "changed" (settings that differ from the run's preset), "train_summary" (dict | None),
     "train_log" (list of log lines), "eval_summary" (dict | None), "eval_rows" (long-format metric rows),
     "paired_rows" (base-vs-tuned comparisons), "missing" (what the run has not written yet, in words)}

Stage outputs read here (written by ``labkit.train.trainer`` and ``labkit.eval.evaluate``):
``config.json``, ``train_summary.json``, ``logs/train_log.jsonl``, ``eval/summary.json``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from labkit.config import Config, ConfigError, read_preset
from labkit.runs import Run, list_runs, read_json, read_log, runs_root

TRAIN_SUMMARY = "train_summary.json"
TRAIN_LOG = ("logs", "train_log.jsonl")
EVAL_SUMMARY = ("eval", "summary.json")

# Train-summary fields shown in the runs table, in this order.
TRAIN_COLUMNS = ("steps", "wall_time_s", "tokens_per_s", "trained_tokens_per_s", "peak_rss_mb", "peak_gpu_mb",
                 "final_train_loss", "final_eval_loss", "base_eval_loss")


# ------------------------------------------------------------------ reading files

def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """``{"lora": {"r": 8}}`` -> ``{"lora.r": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and key != "column_map":
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@lru_cache(maxsize=None)
def preset_settings(preset: str) -> dict[str, Any] | None:
    """The flat settings a preset resolves to (with every default filled in), or None for an unknown preset.

    Cached: presets ship with the package and do not change while it runs; callers must not modify the dict."""
    try:
        raw = read_preset(preset)
    except ConfigError:
        return None
    try:
        return flatten(Config.from_dict(raw).to_dict())
    except ConfigError:  # e.g. a data source missing on this machine: compare against the preset's own keys
        return flatten(raw)


def changed_settings(settings: dict[str, Any], preset: str) -> dict[str, Any]:
    """The settings of a run that differ from its preset (``description`` and ``preset`` excluded)."""
    base = preset_settings(preset)
    if base is None:
        return {}
    return {key: value for key, value in settings.items()
            if key not in ("preset", "description") and key in base and base[key] != value}


# ------------------------------------------------------------------ evaluation summaries

def eval_rows(summary: dict | None) -> tuple[list[dict], list[dict]]:
    """Long-format rows from ``eval/summary.json`` (written by :func:`labkit.eval.evaluate.build_summary`).

    Returns (metric rows ``{model, category, metric, mean, low, high, n}`` for every model tag ("base",
    "tuned") x category x metric, and paired rows ``{category, metric, mean_diff, low, high, p_value, n,
    higher_is_better, outcome}`` from the base-vs-tuned comparison). Metrics without a value (e.g. a
    perplexity with no scored tokens) are left out.
    """
    summary = summary or {}
    metrics = []
    for tag, categories in (summary.get("results") or {}).items():
        for category, entry in categories.items():
            for metric, stats in (entry.get("metrics") or {}).items():
                if isinstance(stats, dict) and stats.get("mean") is not None:
                    metrics.append({"model": tag, "category": category, "metric": metric, "mean": stats["mean"],
                                    "low": stats.get("ci_low"), "high": stats.get("ci_high"), "n": stats.get("n")})
    paired = []
    for category, by_metric in (summary.get("comparison") or {}).items():
        for metric, test in by_metric.items():
            if isinstance(test, dict) and test.get("mean_diff") is not None:
                paired.append({"category": category, "metric": metric, "mean_diff": test["mean_diff"],
                               "low": test.get("ci_low"), "high": test.get("ci_high"), "p_value": test.get("p_value"),
                               "n": test.get("n"), "higher_is_better": test.get("higher_is_better", True),
                               "outcome": test.get("outcome")})
    return metrics, paired


# ------------------------------------------------------------------ records

def _current_form(config: dict) -> dict:
    """A run's saved config as today's labkit reads it (e.g. an older run's ``eval.suite: demo`` is ``[demo]`` now),
    so that comparing it with its preset lists only real changes; the saved form where it no longer validates."""
    try:
        return Config.from_dict(config).to_dict()
    except ConfigError:
        return config


def load_record(run: Run) -> dict:
    """Everything one run wrote, as a plain dict (see the module docstring); missing files are listed, not raised."""
    config = read_json(run.path("config.json"))
    settings = flatten(_current_form(config))
    preset = config.get("preset", "")
    missing = []
    summary_path, log_path, eval_path = run.path(TRAIN_SUMMARY), run.path(*TRAIN_LOG), run.path(*EVAL_SUMMARY)
    train_summary = read_json(summary_path) if summary_path.exists() else None
    if train_summary is None:
        missing.append("training summary (train_summary.json): notebook 02 / `labkit train` has not finished")
    train_log = read_log(log_path) if log_path.exists() else []
    if not train_log:
        missing.append("training log (logs/train_log.jsonl): no training steps logged yet")
    eval_summary = read_json(eval_path) if eval_path.exists() else None
    if eval_summary is None:
        missing.append("evaluation summary (eval/summary.json): notebook 04 / `labkit eval` has not run")
    metrics, paired = eval_rows(eval_summary)
    return {"name": run.name, "dir": str(run.dir), "preset": preset, "config": config, "settings": settings,
            "changed": changed_settings(settings, preset), "train_summary": train_summary, "train_log": train_log,
            "eval_summary": eval_summary, "eval_rows": metrics, "paired_rows": paired, "missing": missing}


def collect(root: Path | None = None, names: Iterable[str] | None = None) -> list[dict]:
    """Records of every run under ``root`` (default ``runs_root()``), or only of the runs named."""
    runs = list_runs(root)
    if names is not None:
        wanted = set(names)
        runs = [r for r in runs if r.name in wanted]
    return [load_record(run) for run in runs]


def varying_settings(records: list[dict]) -> list[str]:
    """Settings whose value is not the same in every run (how the runs differ from each other)."""
    keys = sorted({k for r in records for k in r["settings"]} - {"description", "preset"})
    return [k for k in keys if len({json.dumps(r["settings"].get(k), sort_keys=True, default=str)
                                    for r in records}) > 1]


def _cell(value: Any) -> Any:
    """Lists and dicts as short text, so the table can be sorted, grouped and written to CSV."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def summary_row(record: dict, varying: list[str]) -> dict:
    """One flat table row: identity, differing settings, training numbers, evaluation means."""
    row: dict[str, Any] = {"run": record["name"], "preset": record["preset"],
                           "model": record["settings"].get("model.name"),
                           "changed": ", ".join(f"{k}={_cell(v)}" for k, v in record["changed"].items())}
    row.update({key: _cell(record["settings"].get(key)) for key in varying})
    train = record["train_summary"] or {}
    row.update({key: train.get(key) for key in TRAIN_COLUMNS})
    row["params_total"] = (train.get("trainable_params") or {}).get("total")
    for item in record["eval_rows"]:
        row[f"{item['model']}/{item['category']}/{item['metric']}"] = item["mean"]
    row["missing"] = len(record["missing"])
    return row


def runs_table(records: list[dict] | None = None, root: Path | None = None):
    """A pandas DataFrame with one row per run (see :func:`summary_row`); empty with a note when there are none."""
    import pandas as pd

    records = collect(root) if records is None else records
    if not records:
        print(f"labkit: no runs under {root or runs_root()} (a run appears once notebook 01 has opened it)")
        return pd.DataFrame(columns=["run", "preset", "model", "changed", *TRAIN_COLUMNS])
    varying = varying_settings(records)
    return pd.DataFrame([summary_row(r, varying) for r in records])


def eval_table(records: list[dict]):
    """Every evaluation metric of every run in long format: run, model, category, metric, mean, low, high, n."""
    import pandas as pd

    rows = [{"run": r["name"], **item} for r in records for item in r["eval_rows"]]
    return pd.DataFrame(rows, columns=["run", "model", "category", "metric", "mean", "low", "high", "n"])


def describe_missing(records: list[dict]) -> str:
    """What each run still lacks, one line per run (empty string when every run is complete)."""
    return "\n".join(f"{r['name']}: missing {'; '.join(r['missing'])}" for r in records if r["missing"])
