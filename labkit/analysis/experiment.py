"""Experiments: a grid over one or two settings, repeated over seeds, run one cell after another.

Each cell is an ordinary run (``<exp>-<field>_<value>-s<seed>``; ``=`` is not allowed in run names) that goes
through prepare -> train -> evaluate. A finished cell leaves a done marker (``experiment_done.json``) in its
run folder, so running the experiment again after an interruption skips every finished cell and redoes only
the cell that was interrupted (its training resumes from its last checkpoint). Results are gathered into
one table, saved as ``results.csv`` / ``results.json`` (and ``summary.csv``: mean and std over seeds) under
``<experiments root>/<exp>/``::

    exp = Experiment("size", {"data.limit": [50, 100, 200]}, seeds=[1, 2, 3], preset="cpu-demo")
    table = exp.run()          # run again after an interruption: finished cells are skipped
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.config import DEFAULT_PRESET, Config, diff_configs, load_config, resolve_key
from labkit.analysis.provenance import DONE, machine
from labkit.runs import Run, atomic_write_json, read_json, runs_root

SEED_KEY = "train.seed"
Stage = Callable[[Config, Run], Any]


class ExperimentError(ValueError):
    """The experiment is set up wrongly (grid, seeds, a reused run name); the message says how to fix it."""


def experiments_root() -> Path:
    """``$LABKIT_EXPERIMENTS``, else ``experiments/`` next to the runs root (on Drive too when runs are)."""
    return Path(os.environ.get("LABKIT_EXPERIMENTS") or runs_root().parent / "experiments").expanduser()


# ------------------------------------------------------------------ stages

def _prepare(cfg: Config, run: Run) -> Any:
    from labkit.data.prepare import run_prepare  # prepare_data + the model's tokenizer

    return run_prepare(cfg, run)


def _train(cfg: Config, run: Run) -> Any:
    from labkit.train.trainer import run_training

    return run_training(cfg, run, resume=True)  # an interrupted cell continues from its last checkpoint


def _evaluate(cfg: Config, run: Run) -> Any:
    from labkit.eval.evaluate import run_evaluation

    return run_evaluation(cfg, run, progress=False)


def skip_evaluation(cfg: Config, run: Run) -> None:
    """An evaluate stage that evaluates nothing, for experiments that validation loss answers: the task evaluation
    takes about a third of a cpu-demo cell, and its base-model half repeats, identical, in every cell."""
    return None


@dataclass
class Stages:
    """The stage functions a cell runs, each ``f(config, run)``; tests pass fakes."""

    prepare: Stage = _prepare
    train: Stage = _train
    evaluate: Stage = _evaluate

    def __iter__(self):
        return iter((("prepare", self.prepare), ("train", self.train), ("evaluate", self.evaluate)))


# ------------------------------------------------------------------ cells

@dataclass(frozen=True)
class Cell:
    run_name: str
    values: dict            # setting -> value of this grid point
    seed: int

    def overrides(self) -> dict:
        return {**self.values, SEED_KEY: self.seed}


def _slug(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "none"


def _labels(keys: list[str]) -> dict[str, str]:
    """The field name for each key (``lora.r`` -> ``r``), or the full key where two keys share a field name."""
    fields = [k.split(".", 1)[1] for k in keys]
    return {k: f if fields.count(f) == 1 else k for k, f in zip(keys, fields)}


def check_grid(grid: dict[str, list], seeds: list[int]) -> dict[str, list]:
    """The grid with full ``section.field`` keys; errors name the bad setting."""
    if not 1 <= len(grid) <= 2:
        raise ExperimentError(f"an experiment varies one or two settings; got {len(grid)}: {list(grid)}")
    resolved = {}
    for key, values in grid.items():
        full = resolve_key(key)
        if full == SEED_KEY:
            raise ExperimentError(f"{key} is set by seeds=[...], not by the grid")
        if not isinstance(values, (list, tuple)) or not values:
            raise ExperimentError(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ExperimentError(f"grid[{key!r}] repeats a value: {values!r}")
        resolved[full] = list(values)
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise ExperimentError(f"seeds must be distinct integers, got {seeds!r}")
    return resolved


# ------------------------------------------------------------------ the experiment

@dataclass
class Experiment:
    """A grid of settings x seeds on top of ``preset`` + ``overrides``; see the module docstring."""

    name: str
    grid: dict
    seeds: list = field(default_factory=lambda: [42])
    preset: str = DEFAULT_PRESET
    overrides: dict | list = field(default_factory=dict)
    root: Path | None = None             # runs root (default runs_root())
    folder: Path | None = None           # where results go (default experiments_root()/name)
    stages: Stages = field(default_factory=Stages)

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", self.name or ""):
            raise ExperimentError(f"experiment name {self.name!r} is invalid: use letters, digits, '.', '_', '-'")
        self.seeds = list(self.seeds)
        self.grid = check_grid(self.grid, self.seeds)
        self.folder = Path(self.folder) if self.folder else experiments_root() / self.name
        self._cells = self._make_cells()
        self.configs = {cell.run_name: self.config(cell) for cell in self._cells}  # bad values fail here, early

    def _make_cells(self) -> list[Cell]:
        keys = list(self.grid)
        labels = _labels(keys)
        cells = []
        for combo in itertools.product(*self.grid.values()):
            values = dict(zip(keys, combo))
            point = "-".join(f"{labels[k]}_{_slug(v)}" for k, v in values.items())
            cells += [Cell(f"{self.name}-{point}-s{seed}", values, seed) for seed in self.seeds]
        names = [c.run_name for c in cells]
        if len(set(names)) != len(names):
            raise ExperimentError(f"two grid values give the same run name ({names}); use values that differ "
                                  "in letters or digits")
        return cells

    def cells(self) -> list[Cell]:
        return list(self._cells)

    @property
    def evaluates(self) -> bool:
        """False when the cells skip the task evaluation (their records then hold validation loss and cost only)."""
        return self.stages.evaluate is not skip_evaluation

    def config(self, cell: Cell) -> Config:
        return load_config(self.preset, {**dict(self.override_items()), **cell.overrides()})

    def override_items(self) -> list[tuple[str, Any]]:
        """The settings every cell shares, as (key, value) pairs (``overrides`` may be a dict or "k=v" strings)."""
        if isinstance(self.overrides, dict):
            return list(self.overrides.items())
        return [tuple(o.split("=", 1)) for o in self.overrides]

    def open_run(self, cell: Cell) -> Run:
        return Run.open(cell.run_name, self.configs[cell.run_name], root=self.root)

    # -------------------------------------------------------------- progress

    def is_done(self, cell: Cell) -> bool:
        """True when the cell finished with exactly this cell's settings (a stale marker is an error)."""
        marker = (self.root or runs_root()) / cell.run_name / DONE
        if not marker.exists():
            return False
        changes = diff_configs(read_json(marker)["config"], self.configs[cell.run_name].to_dict())
        if changes:
            raise ExperimentError(f"run {cell.run_name!r} was finished with other settings ({'; '.join(changes)}); "
                                  f"use a new experiment name, or delete {marker.parent} to redo it")
        return True

    def status(self) -> dict[str, str]:
        return {cell.run_name: "done" if self.is_done(cell) else "pending" for cell in self._cells}

    def run(self, on_error: str = "stop"):
        """Run every unfinished cell in order; returns the results table (also saved after every cell).

        ``on_error="stop"`` re-raises a cell's error (run again to resume); ``"continue"`` records it in the
        table's ``error`` column and goes on with the next cell.
        """
        if on_error not in ("stop", "continue"):
            raise ExperimentError(f"on_error={on_error!r}: use 'stop' or 'continue'")
        self._save_spec()
        errors: dict[str, str] = {}
        todo = [c for c in self._cells if not self.is_done(c)]
        print(f"labkit: experiment {self.name}: {len(self._cells) - len(todo)} of {len(self._cells)} cells done, "
              f"{len(todo)} to run")
        for number, cell in enumerate(todo, 1):
            print(f"labkit: [{number}/{len(todo)}] {cell.run_name} ({_describe(cell)})", flush=True)
            try:
                seconds = self._run_cell(cell)
            except Exception as err:
                errors[cell.run_name] = f"{type(err).__name__}: {err}"
                print(f"labkit: [{number}/{len(todo)}] {cell.run_name} failed: {errors[cell.run_name]}", flush=True)
                self.save_results(errors)
                if on_error == "stop":
                    print(f"labkit: cell {cell.run_name} failed; run the experiment again to resume "
                          "(finished cells are skipped)")
                    raise
            except BaseException:  # KeyboardInterrupt: keep what is finished, then stop
                self.save_results(errors)
                raise
            else:
                print(f"labkit: [{number}/{len(todo)}] {cell.run_name} done in {seconds:.0f} s", flush=True)
                self.save_results(errors)
        return self.save_results(errors)

    def _run_cell(self, cell: Cell) -> float:
        cfg, run = self.configs[cell.run_name], self.open_run(cell)
        started = time.time()
        for stage_name, stage in self.stages:
            stage(cfg, run)
        seconds = round(time.time() - started, 1)
        atomic_write_json(run.path(DONE), {"experiment": self.name, "values": cell.values, "seed": cell.seed,
                                           "seconds": seconds, "finished": time.time(), "machine": machine(),
                                           "config": cfg.to_dict()})
        return seconds

    def command(self) -> str:
        """The ``labkit experiment`` command line that builds this same experiment (same run names and configs)."""
        parts = ["labkit", "experiment", "--name", self.name, "--preset", self.preset]
        for key, values in self.grid.items():
            parts += ["--grid", f"{key}={','.join(map(_cli_value, values))}"]
        parts += ["--seeds", ",".join(map(str, self.seeds))]
        for key, value in self.override_items():
            parts += ["--set", f"{key}={_cli_value(value)}"]
        return shlex.join(parts)

    def report(self, folder: Path | None = None, commands: list[str] | None = None, title: str | None = None) -> dict:
        """Write this experiment's report (figures + ``summary.md``) from its finished cells; see
        :func:`labkit.analysis.experiment_report.experiment_report`."""
        from labkit.analysis.experiment_report import experiment_report

        return experiment_report(self, folder=folder, commands=commands, title=title)

    def _save_spec(self) -> None:
        atomic_write_json(self.folder / "experiment.json", {
            "name": self.name, "preset": self.preset, "overrides": self.overrides, "grid": self.grid,
            "seeds": self.seeds, "runs": [c.run_name for c in self._cells]})

    # -------------------------------------------------------------- results

    def results(self, errors: dict[str, str] | None = None):
        """One row per cell: run, status, the grid values, seed, then the run's training and evaluation numbers."""
        import pandas as pd

        from labkit.analysis.registry import load_record, summary_row

        rows = []
        for cell in self._cells:
            run_dir = (self.root or runs_root()) / cell.run_name
            status = "done" if self.is_done(cell) else "failed" if cell.run_name in (errors or {}) else "pending"
            row = {"run": cell.run_name, "status": status, **cell.values, "seed": cell.seed,
                   "error": (errors or {}).get(cell.run_name)}
            if (run_dir / "config.json").exists():
                numbers = summary_row(load_record(Run(cell.run_name, run_dir)), [])
                row.update({k: v for k, v in numbers.items() if k not in ("run", "preset", "changed", "missing")})
            rows.append(row)
        return pd.DataFrame(rows)

    def save_results(self, errors: dict[str, str] | None = None):
        table = self.results(errors)
        self.folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.folder / "results.csv", index=False)
        table.to_json(self.folder / "results.json", orient="records", indent=2)
        summary = summarise(table, list(self.grid))
        if not summary.empty:
            summary.to_csv(self.folder / "summary.csv")
        return table


def _cli_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _describe(cell: Cell) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.overrides().items())


def summarise(table, keys: list[str]):
    """Mean, std and count over seeds of every numeric column, per grid point (finished cells only)."""
    import pandas as pd

    done = table[table["status"] == "done"] if "status" in table else table
    numeric = [c for c in done.select_dtypes("number").columns if c not in (*keys, "seed")]
    if done.empty or not numeric:
        return pd.DataFrame()
    return done.groupby(keys, dropna=False)[numeric].agg(["mean", "std", "count"])


def run_experiment(name: str, grid: dict, seeds: list[int] = (42,), preset: str = DEFAULT_PRESET,
                   overrides: dict | list | None = None, stages: Stages | None = None, on_error: str = "stop"):
    """Build an :class:`Experiment` and run it; returns the results table."""
    experiment = Experiment(name, grid, list(seeds), preset, overrides or {}, stages=stages or Stages())
    return experiment.run(on_error=on_error)


__all__ = ["Experiment", "Stages", "Cell", "ExperimentError", "run_experiment", "summarise", "experiments_root",
           "machine"]
