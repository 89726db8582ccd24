"""The model card (``README.md`` in the Hugging Face Hub's format) for the exported adapter, merged model and GGUF.

YAML front matter (base_model, library_name, license, datasets, tags) and a body made only of what the run wrote:
the data stage's statistics, the config, the training summary, the evaluation summary (base vs tuned with 95%
intervals and the paired verdict) and the export parity report. The export stage may not import the evaluation
stage (tests/test_layout.py), so ``eval/summary.json`` is read as JSON here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labkit.runs import Run, atomic_write_text, read_json

CARD = "README.md"
# Registry names -> (hub id, license) of the model they embed; hub ids labkit's presets use -> license.
KNOWN_BASES = {
    "smollm2-135m-instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "gemma3-270m": ("google/gemma-3-270m", "gemma"),
}
KNOWN_LICENSES = {"llama-3.2": "llama3.2", "llama-3.1": "llama3.1", "smollm2": "apache-2.0", "gemma": "gemma",
                  "qwen2.5": "apache-2.0"}
WORDS = {"better": "helped", "worse": "hurt", "unclear": "no evidence either way"}
KINDS = {"adapter": "LoRA adapter (load it on top of the base model with PEFT)",
         "merged": "merged 16-bit model (base + adapter; transformers, vLLM, TGI)",
         "gguf": "GGUF files (llama.cpp, Ollama, LM Studio)"}


def _load(run: Run, *parts: str) -> dict:
    path = run.path(*parts)
    return read_json(path) if path.exists() else {}


def base_model(name: str) -> tuple[str | None, str | None]:
    """(hub id or None for a local model, license or None when unknown)."""
    if name in KNOWN_BASES:
        return KNOWN_BASES[name]
    hub_id = name if "/" in name and not Path(name).expanduser().exists() else None
    lowered = name.lower()
    license_ = next((lic for key, lic in KNOWN_LICENSES.items() if key in lowered), None)
    return hub_id, license_


def metadata(cfg: dict, kind: str) -> dict:
    """The YAML front matter for a ``kind`` folder (adapter, merged or gguf)."""
    hub_id, license_ = base_model(cfg["model"]["name"])
    meta: dict[str, Any] = {}
    if hub_id:
        meta["base_model"] = hub_id
    if kind == "adapter":
        meta["library_name"] = "peft"
    elif kind == "merged":
        meta["library_name"] = "transformers"
    if license_:
        meta["license"] = license_
    hub_data = [s for s in cfg["data"]["sources"] if not s.startswith("project:") and "/" in s
                and not Path(s).suffix]
    if hub_data:
        meta["datasets"] = hub_data
    meta["tags"] = ["labkit", "lora", "sft", "trl"] + (["gguf"] if kind == "gguf" else [])
    meta["pipeline_tag"] = "text-generation"
    return meta


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _interval(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    return f"{_fmt(stats['mean'])} [{_fmt(stats['ci_low'])}, {_fmt(stats['ci_high'])}]"


def evaluation_rows(summary: dict) -> list[dict]:
    """One row per (category, metric) the evaluation reported: base, tuned, paired change, p, verdict."""
    rows = []
    results = summary.get("results", {})
    for category, per_metric in results.get("base", {}).items():
        for metric, base in per_metric.get("metrics", {}).items():
            tuned = results.get("tuned", {}).get(category, {}).get("metrics", {}).get(metric)
            paired = summary.get("comparison", {}).get(category, {}).get(metric) or {}
            rows.append({"category": category, "metric": metric, "n": base.get("n"), "base": base, "tuned": tuned,
                         "change": {"mean": paired.get("mean_diff"), "ci_low": paired.get("ci_low"),
                                    "ci_high": paired.get("ci_high")} if paired else None,
                         "p_value": paired.get("p_value"), "verdict": WORDS.get(paired.get("outcome"), "n/a")})
    return rows


def _evaluation_section(summary: dict) -> list[str]:
    if not summary:
        return ["## Evaluation", "", "Not evaluated yet (`labkit eval` writes eval/summary.json).", ""]
    rows = evaluation_rows(summary)
    counts = {word: sum(r["verdict"] == word for r in rows) for word in WORDS.values()}
    lines = ["## Evaluation", "",
             f"Suite `{summary.get('suite')}`, base model vs fine-tuned on the same held-out items; means with "
             f"{summary.get('confidence', 0.95):.0%} bootstrap intervals; the change is paired (tuned - base) and the "
             "verdict needs its interval to exclude zero.", "",
             "| category | metric | n | base | tuned | change | p | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['category']} | {r['metric']} | {r['n']} | {_interval(r['base'])} | "
                     f"{_interval(r['tuned'])} | {_interval(r['change'])} | {_fmt(r['p_value'])} | {r['verdict']} |")
    lines += ["", "Verdict: " + ", ".join(f"{n} {word}" for word, n in counts.items()) + " (of "
              f"{len(rows)} metrics).", ""]
    return lines + [f"Note: {note}" for note in summary.get("notes", [])] + ([""] if summary.get("notes") else [])


def _data_section(cfg: dict, stats: dict) -> list[str]:
    lines = ["## Data", "", "Sources: " + ", ".join(f"`{s}`" for s in cfg["data"]["sources"]), ""]
    if not stats:
        return lines
    lines += ["| split | rows | tokens (mean) | tokens (p95) | tokens (max) | trainable share |", "|---|---|---|---|---|---|"]
    for split, info in stats.get("splits", {}).items():
        tokens = info.get("tokens", {})
        lines.append(f"| {split} | {info.get('rows')} | {tokens.get('mean', 'n/a')} | {tokens.get('p95', 'n/a')} | "
                     f"{tokens.get('max', 'n/a')} | {info.get('trainable_share', 'n/a')} |")
    return lines + ["", f"Chat template: `{stats.get('chat_template')}`; max sequence length "
                        f"{stats.get('max_seq_length')} tokens.", ""]


def _settings_section(cfg: dict, train: dict) -> list[str]:
    lora, t = cfg["lora"], cfg["train"]
    lines = ["## Settings", "",
             f"- LoRA: r={lora['r']}, alpha={lora['alpha']}, dropout={lora['dropout']}, target modules "
             f"{lora['target_modules']}, rsLoRA={lora['use_rslora']}, DoRA={lora['use_dora']}",
             f"- Training: lr={t['lr']} ({t['lr_scheduler']}, warm-up {t['warmup_ratio']}), batch {t['batch_size']} x "
             f"accumulation {t['grad_accum']}, " + (f"{t['max_steps']} steps" if t["max_steps"] else
                                                    f"{t['epochs']} epoch(s)") + f", seed {t['seed']}, "
             f"packing={cfg['data']['packing']}, 4-bit base={cfg['model']['load_in_4bit']}"]
    if train:
        lines.append(f"- Run: {train.get('steps')} steps, {train.get('trained_tokens')} trained tokens in "
                     f"{_fmt(train.get('train_seconds'))} s on {train.get('device')} ({train.get('backend')}); "
                     f"validation loss {_fmt(train.get('base_eval_loss'))} (base) -> "
                     f"{_fmt(train.get('final_eval_loss'))} (tuned)")
    return lines + [""]


def _export_section(report: dict) -> list[str]:
    if not report:
        return []
    merge = report.get("merge", {}).get("parity", {})
    lines = ["## Export checks", "", f"- merged vs base + adapter: {'passed' if merge.get('passed') else 'FAILED'}"
             f" (perplexity relative difference {_fmt(merge.get('perplexity_rel_diff'))})"]
    for fmt, entry in report.get("outputs", {}).items():
        checks = entry.get("checks", {})
        for runtime in ("transformers", "llama_cpp"):
            result = checks.get(runtime, {})
            if "skipped" in result:
                continue
            lines.append(f"- {Path(entry['file']).name} read by {runtime}: {'passed' if result.get('passed') else 'FAILED'}"
                         f" ({len(result.get('greedy_mismatches', []))} greedy mismatches, perplexity relative "
                         f"difference {_fmt(result.get('perplexity_rel_diff'))})")
    return lines + [""]


def reproduce_command(cfg: dict, run_name: str) -> str:
    """The CLI commands that remake the run: its preset plus every setting that differs from it."""
    from labkit.config import load_config

    preset = cfg.get("preset", "cpu-demo")
    defaults = load_config(preset).to_dict()
    changed = []
    for section, values in cfg.items():
        if isinstance(values, dict):
            default = defaults.get(section, {})
            changed += [f"--set {section}.{k}={_cli_value(v)}" for k, v in values.items() if default.get(k) != v]
    args = " ".join([f"--preset {preset}", *changed, f"--run {run_name}"])
    return "\n".join(f"labkit {stage} {args}" for stage in ("prepare", "train", "eval", "export"))


def _cli_value(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"'{text}'" if any(c in text for c in " []{}") else text


def card_text(run: Run, kind: str) -> str:
    """The model card of ``run`` for a ``kind`` folder (adapter, merged or gguf)."""
    from labkit import __version__

    cfg = read_json(run.path("config.json"))
    summary, report = _load(run, "eval", "summary.json"), _load(run, "export", "export_report.json")
    hub_id, _ = base_model(cfg["model"]["name"])
    front = yaml.safe_dump(metadata(cfg, kind), sort_keys=False).strip()
    lines = ["---", front, "---", "", f"# {run.name}: {KINDS[kind]}", "",
             f"Fine-tuned from `{hub_id or cfg['model']['name']}` with LoRA (supervised fine-tuning, TRL) by labkit "
             f"{__version__}. {cfg.get('description') or ''}".strip(), ""]
    lines += _data_section(cfg, _load(run, "data", "stats.json"))
    lines += _settings_section(cfg, _load(run, "train_summary.json"))
    lines += _evaluation_section(summary)
    lines += _export_section(report)
    if kind == "gguf" and (run.path("export", "Modelfile")).exists():
        lines += ["## Ollama and LM Studio", "", "```", f"ollama create {run.name} -f Modelfile",
                  f"ollama run {run.name}", "```", "", "LM Studio: load one of the .gguf files; the chat template "
                  "travels inside it.", ""]
    lines += ["## Reproduce", "", f"labkit {__version__}:", "", "```", reproduce_command(cfg, run.name), "```", ""]
    return "\n".join(lines)


def write_cards(run: Run, export_dir: Path) -> list[str]:
    """README.md into ``export/adapter``, ``export/merged`` and ``export/`` (the GGUF folder)."""
    written = []
    for kind, folder in (("adapter", export_dir / "adapter"), ("merged", export_dir / "merged"), ("gguf", export_dir)):
        if folder.is_dir():
            atomic_write_text(folder / CARD, card_text(run, kind))
            written.append(str(folder / CARD))
    return written


def front_matter(text: str) -> dict:
    """The YAML front matter of a card (what the hub reads)."""
    if not text.startswith("---\n"):
        raise ValueError("the card has no YAML front matter (it must start with a '---' line)")
    return yaml.safe_load(text[4:text.index("\n---\n", 4)]) or {}
