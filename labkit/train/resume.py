"""Where a training run starts: from its latest complete checkpoint, from scratch, or not at all (finished).

``run_training(cfg, run, resume=True)`` (notebook 02, ``labkit train``) continues from the latest complete
checkpoint, refuses checkpoints made with other training settings, and returns the recorded summary of a
finished run instead of training it again; ``resume=False`` (``labkit train --restart``) starts over and says
what it removes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.train.checkpoint_io import checkpoint_folders, latest_complete, remove_incomplete
from labkit.config import Config, ConfigError
from labkit.distributed import is_main_process
from labkit.runs import Run, read_json

CHECKPOINTS, ADAPTER, LOGS, TB = "checkpoints", "adapter", "logs", "tb"
TRAIN_LOG = "train_log.jsonl"
SUMMARY = "train_summary"


def latest_checkpoint(run: Run) -> Path | None:
    """The run's latest complete checkpoint (a half-written one is never taken; see labkit.train.checkpoint_io)."""
    return latest_complete(run.path(CHECKPOINTS))


def checkpoint_step(path: Path | None) -> int:
    return int(path.name.rsplit("-", 1)[1]) if path else 0


def resume_from(run: Run, resume: bool | str) -> Path | None:
    """The checkpoint to resume from (None: start from step 0); half-written checkpoints are removed first."""
    if resume is False:
        return None
    if resume is True:
        removed = remove_incomplete(run.path(CHECKPOINTS)) if is_main_process() else []
        if removed:
            print(f"labkit: removed {', '.join(removed)}: written only in part by a process that was stopped")
        return latest_checkpoint(run)
    path = Path(resume)
    if not (path / "trainer_state.json").exists():
        raise FileNotFoundError(f"resume={resume!r} is not a checkpoint folder (no trainer_state.json); "
                                f"checkpoints are under {run.path(CHECKPOINTS)}")
    return path


# Settings that may change between a run and its resumption (they do not change what is learned).
RESUMABLE_CHANGES = ("eval.", "description", "preset", "train.eval_steps", "train.save_steps",
                     "train.save_total_limit", "train.logging_steps", "train.early_stopping_patience",
                     "train.report_to")


def check_resumable(run: Run, cfg: Config) -> None:
    """Refuse to resume checkpoints made with other training settings (the result would be neither run)."""
    from labkit.config import diff_configs

    path = run.path(LOGS, "train_config.json")
    if not path.exists():
        return
    changes = [c for c in diff_configs(read_json(path), cfg.to_dict()) if not c.startswith(RESUMABLE_CHANGES)]
    if changes:
        raise ConfigError(f"run {run.name!r} was trained with other settings ({'; '.join(changes)}). Undo the "
                          "change, train a new run (another run name), or start this one over (--restart on the "
                          "command line; run_training(cfg, run, resume=False) in Python)")


def finished_summary(run: Run) -> dict | None:
    """The recorded summary when the run finished (summary and adapter written); None otherwise."""
    if not (run.has(SUMMARY) and run.path(ADAPTER, "adapter_config.json").exists()):
        return None
    return run.load(SUMMARY)


def start_fresh(run: Run, *, announce: bool) -> None:
    """A new (non-resumed) run must not mix with an earlier run's checkpoints, logs, adapter or summary.
    With ``announce`` (an explicit restart) it says what it removes."""
    targets = [run.path(CHECKPOINTS), run.path(TB), run.path(LOGS, TRAIN_LOG), run.path(ADAPTER),
               run.path(f"{SUMMARY}.json")]
    present = [p for p in targets if p.exists()]
    if announce and present:
        steps = [p.name for p in checkpoint_folders(run.path(CHECKPOINTS))]
        names = [f"{p.relative_to(run.dir)}" + (f" ({', '.join(steps)})" if p.name == CHECKPOINTS and steps else "")
                 for p in present]
        print(f"labkit: starting run {run.name!r} over: removing {'; '.join(names)}", flush=True)
    for path in present:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def quarantine_checkpoints(run: Run, from_step: int) -> Path | None:
    """Rename checkpoints whose weights gave a non-finite loss (step >= ``from_step``); return the last good one."""
    for path in checkpoint_folders(run.path(CHECKPOINTS)):
        if checkpoint_step(path) >= from_step:
            path.rename(path.with_name(f"nonfinite-{path.name}"))
    return latest_checkpoint(run)


def check_ready(run: Run, cfg: Config, checkpoint: Path | None, resuming: bool) -> dict | None:
    """Before any model is loaded: the saved training settings must match whenever there is something to keep (a
    checkpoint or a finished run). Returns the recorded summary when resuming a finished run (nothing to train)."""
    finished = finished_summary(run) if resuming else None
    if checkpoint is not None or finished is not None:
        check_resumable(run, cfg)
    if finished is not None:
        print(f"labkit: run {run.name!r} is already trained ({finished.get('steps')} steps, adapter in "
              f"{run.path(ADAPTER)}); not training it again. To train it over from step 0: --restart on the "
              "command line, run_training(cfg, run, resume=False) in Python")
    return finished
