"""Read raw rows from a source: ``project:NAME``, a local json/jsonl/parquet/csv file, or a hub id.

Rows are plain Python dicts. ``read_source`` returns a train part and, where the source ships one,
a test part (project datasets: ``data/NAME/test.jsonl``). ``data.limit`` applies to the train part.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import config
from labkit.runs import read_jsonl

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")
PROJECT_PREFIX = "project:"


class SourceError(ValueError):
    """A data source cannot be found or read; the message says which and how to fix it."""


@dataclass
class SourceRows:
    name: str
    train: list[dict]
    test: list[dict] | None   # None: the source ships no test split (carve one out)
    validation: list[dict] | None = None   # a fixed validation set (data.val_rows), carved before data.limit


def project_data_dir() -> Path:
    """The project's datasets (inside the package after a wheel / git install, else the clone's ``data/``), as
    :func:`labkit.config.project_data_dir` (which checks sources) says."""
    return config.project_data_dir()


def project_datasets() -> list[str]:
    root = project_data_dir()
    return sorted(p.name for p in root.iterdir() if (p / "train.jsonl").exists()) if root.exists() else []


def read_local(path: str | Path) -> list[dict]:
    """Rows of a local json (a list, or an object holding one list), jsonl, parquet or csv file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"data source {str(path)!r} does not exist")
    rows = _read_rows(path)
    if not rows:
        raise SourceError(f"data source {str(path)!r} is empty: it holds no rows; give a file with at least one row")
    return rows


def _read_rows(path: Path) -> list[dict]:
    # utf-8-sig throughout: a byte-order mark (Windows tools, Excel's "CSV UTF-8") is skipped, not read as data
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # installed with datasets; to_pylist gives plain lists, not numpy arrays

        return pq.read_table(path).to_pylist()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    raise SourceError(f"data source {str(path)!r} has an unsupported type: use {', '.join(LOCAL_SUFFIXES)}")


def _json_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as err:
        raise SourceError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}); JSON lines need .jsonl")
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise SourceError(f"{path} holds an object; expected a list of rows or an object with one list")
        data = lists[0]
    if not isinstance(data, list):
        raise SourceError(f"{path} must hold a list of rows")
    return data


def read_project(name: str) -> SourceRows:
    folder = project_data_dir() / name
    train = folder / "train.jsonl"
    if not train.exists():
        known = ", ".join(project_datasets()) or "none yet (generate them: see data/README)"
        raise SourceError(f"project dataset {name!r} not found at {train}; available: {known}")
    test = folder / "test.jsonl"
    return SourceRows(f"{PROJECT_PREFIX}{name}", read_jsonl(train), read_jsonl(test) if test.exists() else None)


def read_hub(dataset_id: str, split: str = "train", limit: int | None = None, sample: str = "first",
             seed: int = 0) -> list[dict]:
    """A Hugging Face hub dataset split (needs network); ``limit`` is applied before rows are converted."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(dataset_id, split=split)
    except Exception as err:  # datasets raises many types (connection, not found, offline mode)
        raise SourceError(f"could not load hub dataset {dataset_id!r} split {split!r} ({type(err).__name__}: "
                          f"{err}). Offline, use project:NAME or a local file in data.sources") from None
    if limit is not None and limit < len(dataset):
        indices = pick_indices(len(dataset), limit, sample, seed)
        dataset = dataset.select(indices)
    return dataset.to_list() if hasattr(dataset, "to_list") else list(dataset)


def pick_indices(total: int, limit: int | None, sample: str, seed: int) -> list[int]:
    """The first ``limit`` indices, or a seeded random ``limit`` of them (kept in file order)."""
    if limit is None or limit >= total:
        return list(range(total))
    if sample == "random":
        return sorted(random.Random(seed).sample(range(total), limit))
    return list(range(limit))


def take(rows: list[Any], limit: int | None, sample: str = "first", seed: int = 0) -> list[Any]:
    return [rows[i] for i in pick_indices(len(rows), limit, sample, seed)]


def is_local(spec: str) -> bool:
    return Path(spec).suffix.lower() in LOCAL_SUFFIXES or Path(spec).expanduser().exists()


def read_source(spec: str, *, hub_split: str = "train", limit: int | None = None, sample: str = "first",
                seed: int = 0, val_rows: int | None = None, val_seed: int = 0) -> SourceRows:
    """Rows of one ``data.sources`` entry, with ``limit`` applied to its train part.

    With ``val_rows``, that many rows of the whole train part are set aside first as a fixed validation set (seeded
    by ``val_seed`` only), and ``limit`` then applies to the rest: every limit and seed sees the same validation rows.
    """
    if val_rows is not None:
        whole = read_source(spec, hub_split=hub_split)
        count = max(0, min(val_rows, len(whole.train) - 1))  # always leave a training row
        held = set(random.Random(f"{val_seed}:{spec}").sample(range(len(whole.train)), count))
        rest = [row for i, row in enumerate(whole.train) if i not in held]
        validation = [row for i, row in enumerate(whole.train) if i in held]
        return SourceRows(whole.name, take(rest, limit, sample, seed), whole.test, validation)
    if spec.startswith(PROJECT_PREFIX):
        rows = read_project(spec[len(PROJECT_PREFIX):])
        return SourceRows(rows.name, take(rows.train, limit, sample, seed), rows.test)
    if is_local(spec):
        return SourceRows(spec, take(read_local(spec), limit, sample, seed), None)
    return SourceRows(spec, read_hub(spec, hub_split, limit, sample, seed), None)
