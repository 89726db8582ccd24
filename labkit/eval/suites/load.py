"""A suite's items: from the hub through ``datasets`` (progress bar, hub cache), or from a local file that is
either in the hub dataset's own schema or already in labkit's multiple-choice format (detected from its columns).

``limit`` keeps a seeded random subset (:func:`labkit.eval.items.seeded_subset`, keyed on the suite's name), so base
and fine-tuned models, and repeated runs, see the same items; ``first`` keeps the first ``limit`` rows instead (what
``lm_eval --limit`` does, for parity checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.config import CUSTOM_SUITE
from labkit.eval.items import seeded_subset
from labkit.eval.mcscore import MCDataError, validate_item
from labkit.eval.suites.registry import SUITES, Suite, custom_category

MC_FIELDS = ("query", "choices", "gold")


class SuiteError(ValueError):
    """A suite cannot be loaded (unknown name, unreadable file, wrong schema); the message says what to do."""


@dataclass
class SuiteData:
    name: str                 # the suite as named in eval.suite
    category: str             # the result category (file name of its records)
    kind: str                 # "mc" or "squad"
    items: list[dict]         # MC items {id, query, choices, gold[, context]} or chat rows {id, messages, reference}
    source: str               # hub id / revision / split, or the local file


def pick(rows: Sequence[Any], limit: int | None, seed: int, key: str, first: bool = False) -> list[Any]:
    """The first ``limit`` rows (``first``), or a seeded random ``limit`` of them in their order."""
    if first:
        return list(rows) if limit is None else list(rows[:limit])
    return seeded_subset(rows, limit, seed, key)


def hub_rows(suite: Suite, limit: int | None, seed: int, first: bool = False,
             load_dataset: Callable | None = None) -> tuple[list[dict], str]:
    """The suite's rows from the hub (seeded subset chosen before conversion) and a description of the source."""
    if load_dataset is None:
        from datasets import load_dataset
    try:
        dataset = load_dataset(suite.hub_id, suite.config, split=suite.split, revision=suite.revision)
    except Exception as err:  # datasets raises many types (connection, not found, offline mode)
        raise SuiteError(f"could not load {suite.name} ({suite.hub_id}, {suite.config or 'default'}, {suite.split}) "
                         f"from the hub ({type(err).__name__}: {err}); offline, give a local copy: "
                         f"`labkit eval --suite {suite.name} --data FILE`") from None
    indices = pick(range(len(dataset)), limit, seed, suite.name, first)
    rows = dataset.select(indices).to_list()
    revision = suite.revision or "the default branch (not pinned)"
    return rows, f"{suite.hub_id} ({suite.config or 'default'}, {suite.split}) @ {revision}"


def _flatten_squad(rows: list[dict]) -> list[dict]:
    """The official SQuAD v1.1 JSON ({data: [{title, paragraphs: [{context, qas}]}]}) -> the hub's flat rows."""
    flat = []
    for article in rows:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                flat.append({"id": qa.get("id"), "title": article.get("title"), "context": paragraph["context"],
                             "question": qa["question"], "answers": {"text": [a["text"] for a in answers],
                                                                     "answer_start": [a.get("answer_start")
                                                                                      for a in answers]}})
    return flat


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a local json / jsonl / parquet / csv file, or of a dataset folder written by ``save_to_disk``."""
    from labkit.data.loaders import SourceError, read_local

    path = Path(path).expanduser()
    if path.is_dir():
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
        if hasattr(dataset, "keys"):  # a DatasetDict: one split, or the one the suites evaluate
            splits = list(dataset.keys())
            if len(splits) != 1:
                raise SuiteError(f"{path} holds splits {splits}: save only the split to evaluate")
            dataset = dataset[splits[0]]
        return dataset.to_list()
    try:
        rows = read_local(path)
    except SourceError as err:
        raise SuiteError(str(err)) from None
    if rows and isinstance(rows[0], Mapping) and "paragraphs" in rows[0]:
        rows = _flatten_squad(rows)
    return rows


def detect_format(rows: Sequence[Mapping], suite: Suite | None, where: str) -> str:
    """'mc' when rows are labkit's {query, choices, gold}; 'hub' when they carry the suite's hub columns."""
    if not rows:
        raise SuiteError(f"{where} has no rows")
    columns = set(rows[0]) if isinstance(rows[0], Mapping) else set()
    if set(MC_FIELDS) <= columns:
        return "mc"
    if suite is not None and suite.columns and set(suite.columns) <= columns:
        return "hub"
    expected = (f"or the {suite.name} hub columns {', '.join(suite.columns)}" if suite and suite.columns else
                "(for a file in a hub dataset's own schema, name its suite: --suite NAME)")
    raise SuiteError(f"{where}: row 1 has columns {sorted(columns)}; expected labkit's multiple-choice format "
                     f"({', '.join(MC_FIELDS)}) {expected}".rstrip())


def mc_items(rows: Sequence[Mapping], where: str, prefix: str) -> list[dict]:
    """Rows already in labkit's MC format, validated, each with an id."""
    items = []
    for number, row in enumerate(rows, 1):
        item = validate_item(row, f"{where}:{number}")
        items.append({"id": str(row.get("id", f"{prefix}-{number - 1:05d}")), **item})
    return items


def file_items(path: str | Path, suite: Suite | None, limit: int | None, seed: int, first: bool = False) -> list[dict]:
    """Items of a local file in either format; ``suite`` None accepts the MC format only."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SuiteError(f"{path} does not exist; give a local file in the suite's hub schema or labkit's "
                         f"multiple-choice format ({', '.join(MC_FIELDS)})")
    rows = read_rows(path)
    fmt = detect_format(rows, suite, str(path))
    if fmt == "mc" and suite is not None and suite.kind != "mc":
        raise SuiteError(f"{path} is a multiple-choice file but {suite.name} is a generative suite; give rows in "
                         f"its hub schema ({', '.join(suite.columns)})")
    name = suite.name if suite else path.stem
    rows = pick(rows, limit, seed, name, first)
    try:
        return mc_items(rows, str(path), name) if fmt == "mc" else suite.to_items(rows)
    except MCDataError as err:
        raise SuiteError(str(err)) from None


def load_suite(name: str, limit: int | None, seed: int, data: str | Path | None = None, first: bool = False,
               load_dataset: Callable | None = None) -> SuiteData:
    """One suite's items: ``custom:PATH``, a hub suite (or its local copy ``data``)."""
    if name.startswith(CUSTOM_SUITE):
        path = Path(name[len(CUSTOM_SUITE):].strip()).expanduser()
        return SuiteData(name, custom_category(name), "mc", file_items(path, None, limit, seed, first), str(path))
    suite = SUITES.get(name)
    if suite is None or suite.kind == "demo":
        raise SuiteError(f"{name!r} is not a hub suite: use one of {', '.join(n for n in SUITES if n != 'demo')} "
                         "or custom:PATH")
    if data is not None:
        return SuiteData(name, name, suite.kind, file_items(data, suite, limit, seed, first), str(data))
    rows, source = hub_rows(suite, limit, seed, first, load_dataset)
    try:
        items = suite.to_items(rows)
    except MCDataError as err:
        raise SuiteError(f"{source}: {err}") from None
    return SuiteData(name, name, suite.kind, items, source)
