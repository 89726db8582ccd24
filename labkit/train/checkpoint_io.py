"""Checkpoints that are either complete or ignored, and clear errors when the run folder cannot be written.

The Trainer writes ``checkpoint-N/`` in place (weights, optimizer, scheduler, RNG states, then
``trainer_state.json``) and ``transformers.trainer_utils.get_last_checkpoint`` takes the highest N it finds, so
a process killed (or a disk that fills up) in the middle of a save left a half-written folder that the next
resume picked as the latest. labkit keeps the Trainer's saving and adds a marker: after the Trainer's ``on_save``
(every file written, the old checkpoints rotated) :class:`MarkComplete` flushes the folder to disk and writes
``labkit-complete.json`` atomically. :func:`latest_complete` only takes marked folders (checkpoints from an
older labkit, with no marker anywhere, count as complete when their ``trainer_state.json`` reads back).
The final adapter is written to a temporary folder and renamed into place (:func:`save_dir_atomically`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from labkit.distributed import is_main_process, wait_for_everyone
from labkit.runs import atomic_write_json

MARKER = "labkit-complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Errors that mean "the run folder cannot take this write" rather than a bug.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG}


class CheckpointWriteError(RuntimeError):
    """A checkpoint or the adapter could not be written; the previous checkpoint is intact."""


def checkpoint_folders(folder: Path) -> list[Path]:
    """``checkpoint-N`` folders under ``folder``, by step."""
    if not Path(folder).is_dir():
        return []
    found = [p for p in Path(folder).iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))


def _state_reads_back(path: Path) -> bool:
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return state.get("global_step") == int(path.name.rsplit("-", 1)[1])


def complete_checkpoints(folder: Path) -> list[Path]:
    folders = checkpoint_folders(folder)
    marked = [p for p in folders if (p / MARKER).exists()]
    if marked:
        return marked
    return [p for p in folders if _state_reads_back(p)]  # written before labkit marked its checkpoints


def latest_complete(folder: Path) -> Path | None:
    complete = complete_checkpoints(folder)
    return complete[-1] if complete else None


def remove_incomplete(folder: Path) -> list[str]:
    """Delete half-written checkpoints (the Trainer would write into them again); returns their names."""
    complete = set(complete_checkpoints(folder))
    removed = []
    for path in checkpoint_folders(folder):
        if path not in complete:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _fsync_tree(folder: Path) -> None:
    """Push the checkpoint's files to the disk, so a machine that goes down right after keeps them whole."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class MarkComplete(TrainerCallback):
    """Marks each checkpoint complete once every process has finished writing it."""

    def on_save(self, args, state, control, **kwargs):
        wait_for_everyone()  # FSDP / DeepSpeed: other processes write their shards into the same folder
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if is_main_process() and folder.is_dir():
            _fsync_tree(folder)
            atomic_write_json(folder / MARKER, {"step": state.global_step, "time": time.time()})
        wait_for_everyone()


def is_write_failure(err: BaseException, folder: Path, step: int) -> bool:
    """Whether ``err`` came from writing to the run folder: an OS error that says so, or any error raised while
    ``checkpoint-<step>`` was being written (torch.save and safetensors wrap a full disk in their own types)."""
    if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
        return True
    half = Path(folder) / f"checkpoint-{step}"
    return half.is_dir() and not (half / MARKER).exists() and half not in complete_checkpoints(folder)


def write_failure_message(err: BaseException, folder: Path, step: int) -> str:
    """Remove the half-written checkpoint (it only takes space) and say what is left and what to do."""
    half = Path(folder) / f"checkpoint-{step}"
    if is_main_process() and half.is_dir() and half not in complete_checkpoints(folder):
        shutil.rmtree(half, ignore_errors=True)
    good = latest_complete(folder)
    keep = (f"the previous checkpoint {good} is intact, and running again resumes from it" if good
            else "no complete checkpoint was written before it")
    return (f"could not write to the run folder at step {step} ({type(err).__name__}: {err}); {keep}. Free disk "
            f"space or make {Path(folder).parent} writable, then run the same command again")


def save_dir_atomically(target: Path, write: Callable[[Path], None], checkpoint: Path | None = None) -> Path:
    """``write(folder)`` into a temporary folder beside ``target``, then swap it in: ``target`` is either the old
    complete folder or the new complete one, never a mix. On a write error the old folder stays as it was, and
    the error says what continues from ``checkpoint`` (the run's latest)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    try:
        write(staging)
        _fsync_tree(staging)
    except Exception as err:
        shutil.rmtree(staging, ignore_errors=True)
        kept = f"the earlier {target.name}/ is unchanged" if target.exists() else f"no {target.name}/ was written"
        then = (f"the checkpoints are intact: running the same command again resumes from {checkpoint.name} and "
                f"saves {target.name}/" if checkpoint else "no checkpoint was kept (train.save_steps=0)")
        raise CheckpointWriteError(f"could not write {target} ({type(err).__name__}: {err}); {kept}; {then}. Free "
                                   "disk space or make the run folder writable first") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
