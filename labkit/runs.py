"""The run directory: one folder per run under one artifacts root, with atomic writes.

``$LABKIT_HOME`` (default ``~/.labkit``) is the artifacts root; runs live in ``$LABKIT_HOME/runs/<run>/``
unless ``$LABKIT_RUNS`` points elsewhere (on Colab, point it at Google Drive to survive disconnects).
Every stage reads what earlier stages wrote there and writes its own outputs there, so a notebook never
depends on another notebook's in-memory state.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from labkit.config import Config, diff_configs
from labkit.distributed import is_main_process
from labkit.env import versions

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def labkit_home() -> Path:
    return Path(os.environ.get("LABKIT_HOME") or Path.home() / ".labkit").expanduser()


def runs_root() -> Path:
    return Path(os.environ.get("LABKIT_RUNS") or labkit_home() / "runs").expanduser()


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines atomically; returns the count."""
    lines = [json.dumps(row, ensure_ascii=False, default=str) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    # utf-8-sig: files saved by Windows tools / Excel start with a byte-order mark, which json.loads refuses
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
    return rows


def read_log(path: Path) -> list[dict]:
    """The records of a log that may still be written to: a line torn by a killed process is skipped."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line (used for logs written while a stage runs; a torn last line is skipped on read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=str) + "\n")


class MissingInput(FileNotFoundError):
    """A stage's input is not in the run folder; the message names the notebook or command that makes it and the
    path labkit looked at. In a notebook it shows as that one line instead of a traceback (IPython calls
    ``_render_traceback_``), and the CLI prints it as one line too."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass(frozen=True)
class StageInput:
    """A file one stage writes into the run folder and a later one reads."""

    file: str       # relative to the run folder
    what: str
    notebook: str   # the notebook that writes it
    command: str    # the command that writes it


# What each notebook of the series needs from an earlier one (labkit.notebook.start(..., needs=...) checks them).
STAGE_INPUTS = {
    "prepared": StageInput("data/train.jsonl", "prepared data", "01_data_prep", "labkit prepare"),
    "adapter": StageInput("adapter/adapter_config.json", "trained adapter", "02_sft_training", "labkit train"),
}


def check_inputs(run_dir: Path, needs: Iterable[str], preset: str | None = None) -> None:
    """Raise :class:`MissingInput` naming the first input of ``needs`` (keys of ``STAGE_INPUTS``) that is missing."""
    for key in needs:
        if key not in STAGE_INPUTS:
            raise ValueError(f"unknown stage input {key!r}: use one of {', '.join(STAGE_INPUTS)}")
        item = STAGE_INPUTS[key]
        path = run_dir / item.file
        if path.exists():
            continue
        others = sorted(q.parent.name for q in run_dir.parent.glob("*/config.json") if q.parent != run_dir)
        where = f"runs there: {', '.join(others)}" if others else "no runs there"
        command = f"`{item.command}{f' --preset {preset}' if preset else ''} --run {run_dir.name}`"
        raise MissingInput(f"run {run_dir.name!r} has no {item.what}: {path} is missing ({where}). Run notebook "
                           f"{item.notebook} (or {command}) first with the same RUN and runs folder "
                           f"(LABKIT_RUNS={run_dir.parent}).")


@dataclass
class Run:
    """A run folder. Stages call :meth:`path` for their outputs and :meth:`record` for JSON results."""

    name: str
    dir: Path

    @classmethod
    def open(cls, name: str, config: Config | None = None, root: Path | None = None) -> "Run":
        """Open (creating if needed) run ``name``; with a config, record it and the library versions."""
        if not _RUN_NAME.match(name or ""):
            raise ValueError(f"run name {name!r} is invalid: use letters, digits, '.', '_' or '-' (e.g. demo)")
        run = cls(name, (root or runs_root()) / name)
        run.dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            run.save_config(config)
        return run

    @classmethod
    def existing(cls, name: str, root: Path | None = None) -> "Run":
        run = cls(name, (root or runs_root()) / name)
        if not (run.dir / "config.json").exists():
            raise MissingInput(f"no run {name!r} under {run.dir.parent}: run notebook 01 or "
                                    f"`labkit prepare --run {name}` first")
        return run

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def save_config(self, config: Config) -> list[str]:
        """Record the resolved config; returns the changes against what the run had (also logged).

        Under ``accelerate launch`` only the main process writes (else each process would log the same change)."""
        if not is_main_process():
            return []
        new = config.to_dict()
        old_path = self.path("config.json")
        changes = diff_configs(read_json(old_path), new) if old_path.exists() else []
        if changes:
            history = self.path("config_history.jsonl")
            append_jsonl(history, {"time": time.time(), "changes": changes})
        atomic_write_json(old_path, new)
        atomic_write_json(self.path("versions.json"), versions())
        return changes

    def config(self) -> Config:
        return Config.from_dict(read_json(self.path("config.json")))

    def record(self, name: str, data: Any) -> Path:
        """Save a stage's JSON result as ``<name>.json`` (atomically)."""
        target = self.path(f"{name}.json")
        atomic_write_json(target, data)
        return target

    def load(self, name: str) -> Any:
        target = self.path(f"{name}.json")
        if not target.exists():
            raise FileNotFoundError(f"{target} is missing: the stage that writes '{name}' has not run for "
                                    f"run {self.name!r}")
        return read_json(target)

    def has(self, name: str) -> bool:
        return self.path(f"{name}.json").exists()


def list_runs(root: Path | None = None) -> list[Run]:
    base = root or runs_root()
    if not base.exists():
        return []
    return [Run(p.name, p) for p in sorted(base.iterdir()) if (p / "config.json").exists()]
