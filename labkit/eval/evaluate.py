"""The evaluation stage (notebook 04, ``labkit eval``): base vs fine-tuned on held-out data, with 95% intervals.

For each model ("base", and "tuned" = base + the run's adapter when training wrote one) every suite of
``eval.suite`` is scored on the same seeded subset of items. The ``demo`` suite takes ``eval.limit`` test items per
category:

- function_calling: function-name and full-call accuracy of the generated JSON call;
- reading_qa: SQuAD exact match and F1;
- arithmetic: exact numeric answer;
- general: ROUGE-1/2/L/Lsum against the reference reply, and perplexity on the assistant tokens;
- mc_knowledge: multiple-choice acc / acc_norm by log-likelihood (what fine-tuning may cost in knowledge);
- judge (optional, ``eval.judge_model``): an LLM judge's 1-5 score of the general replies.

A hub suite (labkit/eval/suites/) is one more category named after it: a multiple-choice benchmark scored like
mc_knowledge (acc / acc_norm, lm-evaluation-harness prompts), SQuAD v1.1 generated and scored like reading_qa.

Outputs: ``run/eval/<base|tuned>/<category>.jsonl`` (one record per example) and ``run/eval/summary.json``
(means with bootstrap intervals per model, and a paired base-vs-tuned test per metric).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.config import Config
from labkit.eval.aggregate import aggregate_category, compare_category
from labkit.eval.items import MC_CATEGORY, by_category, load_mc_items, split_last_answer
from labkit.eval.judging import run_judge_on
from labkit.infer.modelload import adapter_path, load_eval_model, load_eval_tokenizer
from labkit.eval.scoring import display_reference, score_category
from labkit.eval.tables import best_worst, summary_table
from labkit.eval.verdicts import verdict
from labkit.runs import MissingInput, Run, atomic_write_json, read_json, read_jsonl, write_jsonl

__all__ = ["run_evaluation", "evaluate_model", "summary_table", "examples", "verdict", "load_summary",
           "load_records"]

EVAL_DIR = "eval"
PERPLEXITY_CATEGORIES = ("general",)


class EvalSetupError(ValueError):
    """The evaluation cannot start (unknown suite, no test data); the message says what to do."""


# ----------------------------------------------------------------- one model over the items

def _last_user_text(messages: Sequence[Mapping]) -> str:
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def _generate_all(model, tokenizer, prompts: list[list[dict]], cfg: Config, progress: bool) -> list[str]:
    """Greedy replies, generated longest prompt first so that each batch pads little; returned in input order."""
    from labkit.infer.generate import Sampling, generate_chat

    lengths = [len(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    sampling = Sampling(max_new_tokens=cfg.eval.max_new_tokens, seed=cfg.eval.seed)
    replies = generate_chat(model, tokenizer, [prompts[i] for i in order], sampling,
                            batch_size=cfg.eval.batch_size, progress=progress)
    out = [""] * len(prompts)
    for position, index in enumerate(order):
        out[index] = replies[position]
    return out


def generation_records(model, tokenizer, groups: Mapping[str, Sequence[Mapping]], cfg: Config,
                       progress: bool = True) -> dict[str, list[dict]]:
    """Generate an answer for every item of every category and score it; per-example records per category.

    All categories share one generation pass (longest prompts first), so batches stay full.
    """
    splits = {category: [split_last_answer(row) for row in rows] for category, rows in groups.items()}
    prompts = [prompt for pairs in splits.values() for prompt, _ in pairs]
    if not prompts:
        return {}
    predictions = iter(_generate_all(model, tokenizer, prompts, cfg, progress))
    records: dict[str, list[dict]] = {}
    for category, rows in groups.items():
        preds = [next(predictions) for _ in rows]
        replies = [reply for _, reply in splits[category]]
        scores = score_category(category, rows, preds, replies)
        records[category] = [
            {"id": str(row.get("id")), "category": category, "prompt": _last_user_text(prompt),
             "prediction": pred, "reference": display_reference(category, row, reply), **score}
            for row, (prompt, reply), pred, score in zip(rows, splits[category], preds, scores)]
    return records


def add_perplexity(model, tokenizer, groups: Mapping[str, Sequence[Mapping]], records: dict[str, list[dict]],
                   cfg: Config, progress: bool = True) -> None:
    """Add ``nll`` and ``n_tokens`` (assistant tokens) to the records of the perplexity categories."""
    from labkit.eval.perplexity import conversation_nll

    for category in PERPLEXITY_CATEGORIES:
        if category not in groups or not groups[category]:
            continue
        # a small batch: full-vocabulary logits of a padded batch are the memory peak on a CPU
        nll = conversation_nll(model, tokenizer, [row["messages"] for row in groups[category]],
                               batch_size=max(1, cfg.eval.batch_size // 4), max_length=cfg.data.max_seq_length,
                               progress=progress)
        for record, value in zip(records[category], nll):
            record.update(value)


def mc_records(model, tokenizer, items: Sequence[Mapping], cfg: Config, progress: bool = True,
               category: str = MC_CATEGORY) -> list[dict]:
    """Multiple-choice records (log-likelihood scoring, lm-evaluation-harness conventions)."""
    from labkit.eval.mcscore import score_multiple_choice
    from labkit.infer.fastgen import mc_batch_items

    if not items:
        return []
    batch_size = mc_batch_items(model, cfg.eval.batch_size)  # on a GPU: as many items as memory holds
    result = score_multiple_choice(model, tokenizer, items, batch_size=batch_size, progress=progress,
                                   n_resamples=cfg.eval.bootstrap, seed=cfg.eval.seed)
    return [{"id": item["id"], "category": category, "prompt": item["query"],
             "prediction": item["choices"][r["pred_norm"]], "reference": item["choices"][r["gold"]],
             "acc": float(r["correct"]), "acc_norm": float(r["correct_norm"]), "pred": r["pred"],
             "pred_norm": r["pred_norm"], "gold": r["gold"]} for item, r in zip(items, result["per_item"])]


def evaluate_model(model, tokenizer, groups: Mapping[str, Sequence[Mapping]],
                   mc_sets: Mapping[str, Sequence[Mapping]] | Sequence[Mapping], cfg: Config,
                   progress: bool = True) -> dict[str, list[dict]]:
    """Every category's per-example records for one model; ``mc_sets`` maps a category to its multiple-choice
    items (a plain list is the demo's mc_knowledge items)."""
    if not isinstance(mc_sets, Mapping):
        mc_sets = {MC_CATEGORY: mc_sets}
    records = generation_records(model, tokenizer, groups, cfg, progress)
    add_perplexity(model, tokenizer, groups, records, cfg, progress)
    for category, items in mc_sets.items():
        if items:
            records[category] = mc_records(model, tokenizer, items, cfg, progress, category)
    return records


# ----------------------------------------------------------------- the stage

def eval_dir(run: Run) -> Path:
    return run.path(EVAL_DIR)


def write_records(run: Run, tag: str, records: Mapping[str, list[dict]]) -> dict[str, str]:
    """``run/eval/<tag>/<category>.jsonl``; files of categories no longer evaluated are removed."""
    folder = eval_dir(run) / tag
    shutil.rmtree(folder, ignore_errors=True)
    written = {}
    for category, rows in records.items():
        write_jsonl(folder / f"{category}.jsonl", rows)
        written[category] = str(folder / f"{category}.jsonl")
    return written


def load_records(run: Run, tag: str) -> dict[str, list[dict]]:
    """The per-example records a previous evaluation wrote for ``tag`` ("base" or "tuned")."""
    folder = eval_dir(run) / tag
    return {path.stem: read_jsonl(path) for path in sorted(folder.glob("*.jsonl"))}


def load_summary(run: Run) -> dict:
    path = eval_dir(run) / "summary.json"
    if not path.exists():
        raise MissingInput(f"{path} is missing: run the evaluation (notebook 04 or `labkit eval --run "
                           f"{run.name}`) first")
    return read_json(path)


def examples(run: Run, k: int = 1, width: int = 160):
    """The k best and worst examples per category (tuned model, base reply alongside) as a DataFrame."""
    return best_worst({tag: load_records(run, tag) for tag in ("base", "tuned")}, k=k, width=width)


def build_summary(records: Mapping[str, Mapping[str, list[dict]]], cfg: Config, run: Run,
                  notes: list[str], models: Mapping[str, Any]) -> dict:
    """Aggregates with intervals for each model, and the paired comparison when both models ran."""
    n_boot, seed = cfg.eval.bootstrap, cfg.eval.seed
    results = {tag: {category: {"n": len(rows), "metrics": aggregate_category(category, rows, n_boot, seed)}
                     for category, rows in per_tag.items()} for tag, per_tag in records.items()}
    comparison = {}
    if "base" in records and "tuned" in records:
        comparison = {category: compare_category(category, records["base"][category], rows, n_boot, seed)
                      for category, rows in records["tuned"].items() if category in records["base"]}
    return {"run": run.name, "suite": list(cfg.eval.suite), "model": cfg.model.name, "models": dict(models),
            "settings": {k: getattr(cfg.eval, k) for k in ("limit", "limits", "seed", "batch_size", "max_new_tokens",
                                                             "bootstrap", "judge_model")},
            "confidence": 0.95, "results": results, "comparison": comparison, "notes": notes}


def _test_rows(run: Run) -> list[dict]:
    from labkit.data.prepare import load_prepared

    return load_prepared(run, "test")


def suite_sets(cfg: Config, run: Run) -> tuple[dict[str, list], dict[str, list], list[str], dict[str, str]]:
    """Every suite's items: (generation rows per category, multiple-choice items per category, notes, sources)."""
    from labkit.eval.suites import load_suite

    groups: dict[str, list] = {}
    mc_sets: dict[str, list] = {}
    notes, sources = [], {}
    for name in cfg.eval.suite:
        limit = cfg.eval.limit_for(name)
        if name == "demo":
            groups.update(by_category(_test_rows(run), limit, cfg.eval.seed))
            mc_items = load_mc_items(limit, cfg.eval.seed)
            if mc_items:
                mc_sets[MC_CATEGORY] = mc_items
            else:
                notes.append("No multiple-choice knowledge set (data/mc_knowledge/test.jsonl): knowledge cost not "
                             "measured.")
            sources[name] = "the run's prepared test split (data/), and data/mc_knowledge/test.jsonl"
            continue
        data = load_suite(name, limit, cfg.eval.seed)
        (mc_sets if data.kind == "mc" else groups)[data.category] = data.items
        sources[name] = data.source
    return groups, mc_sets, notes, sources


def run_evaluation(cfg: Config, run: Run, progress: bool = True) -> dict:
    """Evaluate the base model and, when the run has an adapter, the fine-tuned one; write and return the summary."""
    groups, mc_sets, notes, sources = suite_sets(cfg, run)
    adapter = adapter_path(run)
    if adapter is None:
        notes.append(f"The run has no adapter ({run.path('adapter')} is missing): only the base model was "
                     "evaluated. Run notebook 02 (or `labkit train`) to compare with a fine-tuned model.")
        shutil.rmtree(eval_dir(run) / "tuned", ignore_errors=True)
    tokenizer = load_eval_tokenizer(cfg, adapter)
    records, models = {}, {}
    for tag, path in (("base", None), ("tuned", adapter)):
        if tag == "tuned" and adapter is None:
            continue
        started = time.time()
        model = load_eval_model(cfg, path)
        records[tag] = evaluate_model(model, tokenizer, groups, mc_sets, cfg, progress)
        del model
        models[tag] = {"name": cfg.model.name, "adapter": str(path) if path else None,
                       "seconds": round(time.time() - started, 1)}
    judge = run_judge_on(cfg, records, progress)
    if judge.get("skipped"):
        notes.append(f"No LLM judge was run ({judge['skipped']}).")
    for tag, per_category in records.items():
        write_records(run, tag, per_category)
    summary = build_summary(records, cfg, run, notes, models)
    summary["judge"] = judge
    summary["sources"] = sources
    atomic_write_json(eval_dir(run) / "summary.json", summary)
    return summary
