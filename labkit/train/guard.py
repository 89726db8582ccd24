"""Guards around one training session: one trainer per run folder, and a stop signal that saves first.

- :func:`run_lock`: a lock file ``<run>/train.lock`` holding the trainer's PID, host, start time and command.
  A second trainer (``labkit train`` or notebook 02) on a live lock stops at once, naming the process; a lock
  left by a killed process (its PID is gone, or now belongs to a younger process) is cleared with a message.
- :class:`StopOnSignal`: on SIGTERM (preemption, ``kill``, a scheduler's timeout) or SIGINT (Ctrl-C, the
  notebook's stop button) the current optimizer step finishes, the Trainer writes a checkpoint at that step and
  the log, and training ends with :class:`TrainingStopped`, whose message names the checkpoint and how to
  continue. Under ``accelerate launch`` the processes agree on the step through one all-reduce per step.

The Trainer's own machinery does the work (``control.should_save`` / ``should_training_stop`` set from a
callback, ``resume_from_checkpoint`` to continue); this module only decides when.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from transformers import TrainerCallback

from labkit.distributed import any_process, control_group, is_main_process
from labkit.stopping import REPEAT_WINDOW_S, STOP_SIGNALS

LOCK_NAME = "train.lock"
# A lock written on another machine (a run folder on a shared or Google Drive) cannot be checked by PID; it is
# taken as stale when the trainer has not touched it for this long (the trainer touches it every minute).
FOREIGN_LOCK_STALE_S = 3600
HEARTBEAT_S = 60


class RunLocked(RuntimeError):
    """Another live process is training this run."""


class TrainingStopped(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, message: str, signum: int, checkpoint: Path | None):
        super().__init__(message)
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint


# ------------------------------------------------------------------ one trainer per run folder

def _process_started(pid: int) -> float | None:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def lock_is_live(path: Path, holder: dict | None) -> bool:
    """Whether the process named in the lock file still runs (see the module docstring for the rules)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if holder is None:  # torn or being written this instant by a starting trainer
        return age < 10
    if holder.get("host") != socket.gethostname():
        return age < FOREIGN_LOCK_STALE_S
    if holder.get("pid") == os.getpid():
        return False  # this process's own lock, left by an earlier call that did not release it
    started = _process_started(int(holder.get("pid", -1)))
    # A PID is reused after its process ends; the start time tells the holder from a newer process.
    return started is not None and abs(started - holder.get("process_started", started)) < 1.0


def describe_holder(holder: dict | None) -> str:
    if holder is None:
        return "a process that is starting"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"process {holder.get('pid')} on {holder.get('host')} (since {when}: {holder.get('command', '?')})"


def acquire_lock(path: Path) -> None:
    """Create the lock file atomically (O_EXCL); clear a stale one first; raise :class:`RunLocked` on a live one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
          "process_started": _process_started(os.getpid()), "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if lock_is_live(path, holder):
                pid = holder.get("pid") if holder else "?"
                raise RunLocked(f"run folder {path.parent} is being trained by {describe_holder(holder)}. Wait for "
                                f"it to finish, or stop it (kill -TERM {pid} saves a checkpoint first), then run "
                                f"again; if that process is surely gone, delete {path}") from None
            print(f"labkit: clearing a stale lock left by {describe_holder(holder)}, which no longer runs",
                  flush=True)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        return
    raise RunLocked(f"could not take the lock {path}: other processes keep creating it")


def release_lock(path: Path) -> None:
    holder = _holder(path)
    if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run_dir>/train.lock`` for the block. Under ``accelerate launch`` the main process holds it and
    every process learns whether it got it (so none waits forever at a barrier)."""
    path = Path(run_dir) / LOCK_NAME
    error = None
    if is_main_process():
        try:
            acquire_lock(path)
        except RunLocked as err:
            error = err
    if any_process(error is not None):
        raise error or RunLocked(f"run folder {run_dir} is locked by another trainer (the main process says which)")
    try:
        yield
    finally:
        if is_main_process():
            release_lock(path)


def touch_lock(run_dir: Path) -> None:
    try:
        os.utime(Path(run_dir) / LOCK_NAME)
    except OSError:
        pass  # a heartbeat only; the lock stays valid on this host by its PID


# ------------------------------------------------------------------ a stop signal saves first

class StopOnSignal(TrainerCallback):
    """Turns SIGTERM / SIGINT into "save a checkpoint after this step, then stop" (use :meth:`installed`).

    A second signal (more than ``REPEAT_WINDOW_S`` after the first) stops at once without saving: SIGINT raises
    KeyboardInterrupt, SIGTERM ends the process as the default handler would."""

    def __init__(self, run_dir: Path | None = None):
        self.run_dir = run_dir
        self.requested: int | None = None
        self.requested_at = 0.0
        self.stopped_at: int | None = None  # the step whose checkpoint was saved on the stop
        self.group = None
        self._previous: dict = {}
        self._beat = 0.0

    @contextmanager
    def installed(self) -> Iterator["StopOnSignal"]:
        try:
            self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        except ValueError:  # not the main thread: signals cannot be caught here; training runs unguarded
            self._previous = {}
        try:
            yield self
        finally:
            self.restore()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.requested is not None and now - self.requested_at > REPEAT_WINDOW_S:
            self.restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(signum)
            return
        if self.requested is None:
            self.requested, self.requested_at = signum, now
            # os.write, not print: a handler may interrupt a print to the same stream.
            os.write(2, f"\nlabkit: {signal.Signals(signum).name} received: finishing this step, saving a "
                        f"checkpoint, then stopping (signal again to stop at once without saving)\n".encode())

    def on_train_begin(self, args, state, control, **kwargs):
        self.group = control_group()  # every process calls on_train_begin: the collective creation is safe

    def on_step_end(self, args, state, control, **kwargs):
        if self.run_dir is not None and is_main_process() and time.monotonic() - self._beat > HEARTBEAT_S:
            self._beat = time.monotonic()
            touch_lock(self.run_dir)
        if not any_process(self.requested is not None, self.group):
            return control
        # The Trainer saves a checkpoint (even with save_strategy "no"), logs this step and leaves its loop.
        control.should_save = control.should_log = control.should_training_stop = True
        self.stopped_at = state.global_step
        if self.requested is None:  # another process got the signal (e.g. one rank preempted)
            self.requested = signal.SIGTERM
        return control

    def error(self, checkpoints: Path, log: Path, command: str | None) -> TrainingStopped:
        """What to raise after a stop: the checkpoint saved, the log, and how to continue."""
        saved = Path(checkpoints) / f"checkpoint-{self.stopped_at}"
        how = (f"run the same command again: {command}" if command
               else "run the training cell again (run_training(cfg, run, resume=True))")
        return TrainingStopped(f"stopped by {signal.Signals(self.requested).name} after step {self.stopped_at}: saved "
                               f"checkpoint {saved} and the log {log}. To continue from there, {how}",
                               self.requested, saved)
