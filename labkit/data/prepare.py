"""The data stage (notebook 01, ``labkit prepare``): sources -> clean, split, tokenised stats -> run/data/.

Steps, each callable on its own (the notebook walks through them):
``load_sources`` -> ``standardise_sources`` (validation report) -> ``build_splits`` (score filter, test
carve-out, de-duplication, token lengths, length filter, validation split) -> ``compute_stats`` ->
``save_prepared``. :func:`prepare_data` runs them all.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from labkit.config import Config, DataConfig
from labkit.data.display import length_stats
from labkit.data.filters import dedupe, filter_min_score, filter_token_length, keys_of
from labkit.data.loaders import SourceRows, read_source
from labkit.data.render import end_of_turn_text, tokenize_conversation
from labkit.data.split import split_rows
from labkit.data.standardise import resolve_schema, short_name, standardise_row
from labkit.templates import ensure_chat_template
from labkit.data.validate import check_rows
from labkit.runs import MissingInput, Run, atomic_write_json, read_json, read_jsonl, write_jsonl

SPLITS = ("train", "validation", "test")
ROW_FIELDS = ("id", "category", "source", "messages", "reference")
DATA_DIR = "data"


class PreparedDataMissing(MissingInput):
    """The run has no prepared data yet."""


@dataclass
class CleanSource:
    name: str
    train: list[dict]
    test: list[dict] | None
    validation: list[dict] | None = None   # the fixed validation rows (data.val_rows)


@dataclass
class Splits:
    rows: dict[str, list[dict]]
    tokens: dict[str, list[dict]]            # per row: n_tokens, n_trained (after truncation)
    filtered: dict[str, int] = field(default_factory=dict)


def load_sources(data: DataConfig, seed: int = 0) -> list[SourceRows]:
    """Raw rows of every ``data.sources`` entry (``data.limit`` rows of each train part; with ``data.val_rows``, a
    fixed validation set of each source is carved first)."""
    return [read_source(spec, hub_split=data.hub_split, limit=data.limit, sample=data.sample, seed=seed,
                        val_rows=data.val_rows, val_seed=data.val_seed) for spec in data.sources]


def _clean(rows: list, data: DataConfig, source: str, part: str) -> tuple[list[dict], dict]:
    schema = resolve_schema(rows, data.schema, source)

    def convert(raw: Any) -> dict:
        return standardise_row(raw, schema, data.column_map, source)

    kept, report = check_rows(rows, convert, policy=data.invalid, source=f"{source} ({part})")
    for index, row in enumerate(kept):
        row.setdefault("id", f"{short_name(source)}-{part}-{index:06d}")
    return kept, {**report, "schema": schema}


def standardise_sources(sources: list[SourceRows], data: DataConfig) -> tuple[list[CleanSource], dict]:
    """Standardise and validate every source under ``data.invalid``; returns clean sources and the report."""
    clean, reports = [], []
    for source in sources:
        train, report = _clean(source.train, data, source.name, "train")
        reports.append(report)
        parts = {}
        for part in ("test", "validation"):
            if getattr(source, part, None) is not None:
                parts[part], report = _clean(getattr(source, part), data, source.name, part)
                reports.append(report)
        clean.append(CleanSource(source.name, train, parts.get("test"), parts.get("validation")))
    totals = {key: sum(r[key] for r in reports) for key in ("rows", "kept", "dropped")}
    problems = Counter()
    for report in reports:
        problems.update(report["problems"])
    return clean, {"policy": data.invalid, **totals, "problems": dict(problems), "sources": reports}


def token_info(tokenizer: Any, rows: list[dict], max_length: int) -> list[dict]:
    """Per row: rendered length and the number of trained tokens left after truncation to ``max_length``."""
    info = []
    for row in rows:
        encoded = tokenize_conversation(tokenizer, row["messages"], warn=False)
        info.append({"n_tokens": len(encoded["input_ids"]), "n_trained": sum(encoded["assistant_masks"][:max_length])})
    return info


def build_splits(clean: list[CleanSource], data: DataConfig, tokenizer: Any, seed: int = 0) -> Splits:
    """Filter, de-duplicate and split the clean sources into train / validation / test.

    The validation rows are ``data.val_fraction`` of the kept training rows (seeded by ``seed``), or, with
    ``data.val_rows``, the sources' fixed validation rows (filtered like the rest, never trained on)."""
    filtered = Counter()
    train_pool, test, fixed = [], [], []
    for source in clean:
        rows, dropped = filter_min_score(source.train, data.min_score)
        filtered["low_score"] += dropped
        if source.test is None:
            rows, carved = split_rows(rows, data.test_fraction, seed)
        else:
            carved, dropped = filter_min_score(source.test, data.min_score)
            filtered["low_score"] += dropped
        train_pool += rows
        test += carved
        fixed += filter_min_score(source.validation, data.min_score)[0] if source.validation else []
    if data.dedupe:
        test, filtered["duplicates"] = dedupe(test)
        fixed, filtered["validation_test_overlap"] = dedupe(fixed, keys_of(test))
        train_pool, filtered["train_test_overlap"] = dedupe(train_pool, keys_of(test) | keys_of(fixed))
    rows, tokens = {}, {}
    for name, part in (("train", train_pool), ("test", test), ("validation", fixed)):
        info = token_info(tokenizer, part, data.max_seq_length)
        lengths = [i["n_tokens"] for i in info]
        kept_rows, _, counts = filter_token_length(list(zip(part, info)), lengths, data.min_tokens, data.max_tokens)
        filtered.update(counts)
        rows[name] = [r for r, _ in kept_rows]
        tokens[name] = [i for _, i in kept_rows]
    if not rows["train"]:
        raise ValueError(f"no training rows are left after filtering ({dict(filtered)}): loosen data.min_score, "
                         "data.min_tokens / data.max_tokens, or add sources")
    if data.val_rows is None:
        paired = [{**row, "_tokens": info} for row, info in zip(rows["train"], tokens["train"])]
        train, validation = split_rows(paired, data.val_fraction, seed)
        for name, part in (("train", train), ("validation", validation)):
            rows[name] = [{k: v for k, v in r.items() if k != "_tokens"} for r in part]
            tokens[name] = [r["_tokens"] for r in part]
    return Splits({name: rows[name] for name in SPLITS}, {name: tokens[name] for name in SPLITS}, dict(filtered))


def lengths_by_category(splits: Splits, split: str = "train") -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for row, info in zip(splits.rows[split], splits.tokens[split]):
        grouped[str(row.get("category"))].append(info["n_tokens"])
    return dict(grouped)


def _validation_words(data: DataConfig) -> str:
    if data.val_rows is not None:
        return f"fixed: data.val_rows={data.val_rows} rows per source (data.val_seed={data.val_seed})"
    return f"data.val_fraction={data.val_fraction} of the run's own training rows"


def compute_stats(splits: Splits, data: DataConfig, tokenizer: Any, validation_report: dict | None = None) -> dict:
    """Counts per split and category, token-length percentiles, trainable share and truncation rate."""
    stats: dict[str, Any] = {"max_seq_length": data.max_seq_length, "chat_template": data.chat_template,
                             "end_of_turn": end_of_turn_text(tokenizer), "filtered": splits.filtered,
                             "sources": list(data.sources), "splits": {}, "validation_set": _validation_words(data)}
    empty_ids = []
    for name in SPLITS:
        rows, info = splits.rows[name], splits.tokens[name]
        lengths = [i["n_tokens"] for i in info]
        kept_tokens = sum(min(n, data.max_seq_length) for n in lengths)
        trained = sum(i["n_trained"] for i in info)
        empty_ids += [row["id"] for row, i in zip(rows, info) if i["n_trained"] == 0]
        stats["splits"][name] = {
            "rows": len(rows), "by_category": dict(sorted(Counter(str(r.get("category")) for r in rows).items())),
            "tokens": length_stats(lengths, data.max_seq_length),
            "trainable_share": round(trained / kept_tokens, 4) if kept_tokens else 0.0,
        }
    stats["no_trainable_token"] = {"count": len(empty_ids), "ids": empty_ids[:20]}
    if validation_report is not None:
        stats["validation"] = {k: validation_report[k] for k in ("policy", "rows", "kept", "dropped", "problems")}
    if empty_ids:
        warnings.warn(f"{len(empty_ids)} example(s) have no trainable token after truncation to "
                      f"data.max_seq_length={data.max_seq_length} (e.g. {empty_ids[:3]}): they teach nothing; "
                      "raise data.max_seq_length or set data.max_tokens to drop them", stacklevel=2)
    return stats


def save_prepared(run: Run, splits: Splits, stats: dict, validation_report: dict) -> dict[str, str]:
    """Write ``run/data/{train,validation,test}.jsonl``, ``stats.json``, ``validation_report.json``, ``lengths.json``."""
    folder = run.path(DATA_DIR)
    written = {}
    for name in SPLITS:
        rows = [{key: row.get(key) for key in ROW_FIELDS} for row in splits.rows[name]]
        write_jsonl(folder / f"{name}.jsonl", rows)
        written[name] = str(folder / f"{name}.jsonl")
    lengths = {name: lengths_by_category(splits, name) for name in SPLITS}
    for name, data in (("stats", stats), ("validation_report", validation_report), ("lengths", lengths)):
        atomic_write_json(folder / f"{name}.json", data)
        written[name] = str(folder / f"{name}.json")
    return written


def prepare_data(cfg: Config, run: Run, tokenizer: Any) -> dict:
    """The whole data stage; installs ``cfg.data.chat_template`` on ``tokenizer`` and returns the stats."""
    ensure_chat_template(tokenizer, cfg.data.chat_template)
    seed = cfg.train.seed
    clean, report = standardise_sources(load_sources(cfg.data, seed), cfg.data)
    splits = build_splits(clean, cfg.data, tokenizer, seed)
    stats = compute_stats(splits, cfg.data, tokenizer, report)
    save_prepared(run, splits, stats, report)
    return stats


def run_prepare(cfg: Config, run: Run) -> dict:
    """``labkit prepare``: the data stage with the config's model tokenizer; prints a short summary."""
    from labkit.models import load_tokenizer

    stats = prepare_data(cfg, run, load_tokenizer(cfg.model.name))
    for name in SPLITS:
        part = stats["splits"][name]
        print(f"{name:>10}: {part['rows']} rows {part['by_category']}, p95 {part['tokens'].get('p95', 0)} tokens")
    print(f"prepared data written to {run.path(DATA_DIR)}")
    return stats


def _prepared_file(run: Run, name: str):
    path = run.path(DATA_DIR, name)
    if not path.exists():
        raise PreparedDataMissing(f"run {run.name!r} has no prepared data ({path} is missing): run notebook 01 "
                                  f"or `labkit prepare --run {run.name}` first")
    return path


def load_prepared(run: Run, split: str) -> list[dict]:
    """Rows of a prepared split (train, validation or test): id, category, source, messages, reference."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown: use {', '.join(SPLITS)}")
    return read_jsonl(_prepared_file(run, f"{split}.jsonl"))


def load_stats(run: Run) -> dict:
    return read_json(_prepared_file(run, "stats.json"))


def load_lengths(run: Run, split: str = "train") -> dict[str, list[int]]:
    """Token lengths per category of a prepared split (for :func:`plot_length_histograms`)."""
    return read_json(_prepared_file(run, "lengths.json"))[split]
