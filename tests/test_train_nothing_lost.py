"""Nothing lost from the command line (issue 24): `labkit train` resumes, a stop signal saves first, one trainer per
run, a failed write keeps the previous checkpoint, `--restart` starts over, and checks come before model loads.

The CLI runs are subprocesses of ``python -m labkit.cli train`` with this checkout on PYTHONPATH; the reference
runs train in this process on one torch thread (the children get OMP_NUM_THREADS=1), so adapters compare exactly.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import labkit.train as train
from labkit.train.checkpoint_io import MARKER, CheckpointWriteError, latest_complete, save_dir_atomically
from labkit.config import ConfigError
from labkit.train import latest_checkpoint, run_training
from labkit.train.guard import RunLocked, acquire_lock, release_lock
from train_support import prepared_run

REPO = Path(__file__).resolve().parents[1]
STEPS = {"train.max_steps": 8, "train.save_steps": 2, "train.save_total_limit": 3}


def _overrides(run, steps: dict) -> dict:
    # What prepared_run puts in the run's config, so that the CLI asks for the same settings.
    return {"data.sources": str(run.path("data", "train.jsonl")), "train.eval_steps": 0, **steps}


def _command(run, steps: dict, *extra: str) -> list[str]:
    sets = [word for key, value in _overrides(run, steps).items() for word in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "labkit.cli", "train", "--preset", "smoke", "--run", run.name, *sets, *extra]


def _env() -> dict:
    return {**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _start(run, steps: dict) -> subprocess.Popen:
    return subprocess.Popen(_command(run, steps), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _cli(run, steps: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(run, steps, *extra), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)


def _wait_for(condition, child: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            out, err = child.communicate()
            raise AssertionError(f"the trainer ended ({child.returncode}) before the test could stop it:\n"
                                 f"{out[-1500:]}\n{err[-1500:]}")
        assert time.monotonic() < deadline, "timed out waiting for the trainer"
        time.sleep(0.02)


def _steps(run) -> list[int]:
    path = run.path("logs", "train_log.jsonl")
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return [row["step"] for row in rows if row.get("kind") == "train"]


def _assert_same_adapter(got_dir: Path, want: Path | dict) -> None:
    want = load_file(want / "adapter_model.safetensors") if isinstance(want, Path) else want
    got = load_file(got_dir / "adapter_model.safetensors")
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)


# ------------------------------------------------------------------ (1) SIGKILL, then the same command

def test_sigkill_then_the_same_command_resumes_to_the_uninterrupted_result(one_thread):
    cfg, reference = prepared_run("reference", STEPS)
    full = run_training(cfg, reference)

    _, run = prepared_run("killed", STEPS)
    child = _start(run, STEPS)
    _wait_for(lambda: run.path("checkpoints", "checkpoint-2", MARKER).exists(), child)
    child.kill()
    child.communicate()
    assert not run.path("adapter").exists(), "the run finished before the kill: raise train.max_steps"
    kept = latest_checkpoint(run)

    done = _cli(run, STEPS)  # the same command again

    assert done.returncode == 0, done.stderr[-3000:]
    summary = run.load("train_summary")
    assert summary["resumed_from"] == str(kept) and f"resuming from {kept}" in done.stdout
    assert summary["steps"] == full["steps"] == 8
    _assert_same_adapter(run.path("adapter"), reference.path("adapter"))
    assert _steps(run) == list(range(1, 9))  # each step once: the killed run's later steps were dropped and redone


# ------------------------------------------------------------------ (2) SIGTERM saves first

def test_sigterm_saves_the_step_it_stopped_on_and_the_rerun_repeats_no_step():
    steps = {"train.max_steps": 30, "train.save_steps": 0}  # no periodic checkpoint: only the stop writes one
    _, run = prepared_run("stopped", steps)
    child = _start(run, steps)
    _wait_for(lambda: len(_steps(run)) >= 2, child)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=600)

    assert child.returncode == 128 + signal.SIGTERM, err[-3000:]
    stopped = _steps(run)[-1]
    assert stopped < 30, "the run finished before the signal: raise train.max_steps"
    assert _steps(run) == list(range(1, stopped + 1))  # the step it stopped on is logged
    checkpoint = run.path("checkpoints", f"checkpoint-{stopped}")
    assert latest_complete(run.path("checkpoints")) == checkpoint
    assert f"saved checkpoint {checkpoint}" in err
    assert f"labkit train --preset smoke --run {run.name} --set" in err  # the command that continues
    assert not run.path("train.lock").exists() and not run.path("adapter").exists()

    done = _cli(run, steps)

    assert done.returncode == 0, done.stderr[-3000:]
    assert run.load("train_summary")["resumed_from"] == str(checkpoint)
    assert _steps(run) == list(range(1, 31))


# ------------------------------------------------------------------ (3) one trainer per run folder

def test_a_second_trainer_on_a_live_run_refuses_at_once_naming_the_process():
    steps = {"train.max_steps": 1000, "train.save_steps": 0}
    cfg, run = prepared_run("busy", steps)
    child = _start(run, steps)
    try:
        _wait_for(lambda: len(_steps(run)) >= 1, child)
        holder = json.loads(run.path("train.lock").read_text())
        assert (holder["pid"], holder["host"]) == (child.pid, socket.gethostname())
        began = time.monotonic()
        with pytest.raises(RunLocked, match=f"process {child.pid} on {socket.gethostname()}"):
            run_training(cfg, run, resume=True)  # what notebook 02 runs
        assert time.monotonic() - began < 5  # refused before loading anything
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=600)
    assert child.returncode == 128 + signal.SIGTERM
    assert not run.path("train.lock").exists()


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


@pytest.mark.parametrize("holder", ["dead", "reused"])
def test_a_stale_lock_is_cleared(tmp_path, capsys, holder):
    import psutil

    path = tmp_path / "train.lock"
    parent = os.getppid()
    pid, started = (_dead_pid(), 0.0) if holder == "dead" else (parent, psutil.Process(parent).create_time() - 60)
    path.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": 0, "process_started": started,
                                "command": "labkit train"}))
    acquire_lock(path)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"clearing a stale lock left by process {pid}" in capsys.readouterr().out
    release_lock(path)
    assert not path.exists()


def test_a_live_lock_is_refused(tmp_path):
    import psutil

    path = tmp_path / "train.lock"
    parent = os.getppid()
    path.write_text(json.dumps({"pid": parent, "host": socket.gethostname(), "started": time.time(),
                                "process_started": psutil.Process(parent).create_time(), "command": "labkit train"}))
    with pytest.raises(RunLocked, match=f"process {parent} on"):
        acquire_lock(path)
    assert json.loads(path.read_text())["pid"] == parent  # untouched


# ------------------------------------------------------------------ (4) a failed write keeps the previous checkpoint

@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("[enforce fail at inline_container.cc] file write failed")])
def test_a_failed_checkpoint_write_leaves_the_previous_one_loadable(monkeypatch, one_thread, error):
    cfg, run = prepared_run("diskfull", STEPS)
    real_save = torch.save

    def full_disk(obj, target, *args, **kwargs):
        if "checkpoint-4" in str(target):
            Path(target).write_bytes(b"\0" * 64)  # half a file, then the disk is full
            raise error
        return real_save(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match=r"at step 4 .*checkpoint-2 is intact"):
        run_training(cfg, run)
    assert latest_checkpoint(run) == run.path("checkpoints", "checkpoint-2")
    assert not run.path("checkpoints", "checkpoint-4").exists() and not run.path("adapter").exists()
    assert not run.path("train.lock").exists()

    monkeypatch.setattr(torch, "save", real_save)
    resumed = run_training(cfg, run, resume=True)
    assert resumed["resumed_from"] == str(run.path("checkpoints", "checkpoint-2")) and resumed["steps"] == 8
    assert _steps(run) == list(range(1, 9))


def test_a_failed_adapter_write_keeps_the_earlier_adapter(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "adapter_model.safetensors").write_text("old")

    def half_then_full(folder: Path) -> None:
        (folder / "adapter_model.safetensors").write_text("new, cut sh")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CheckpointWriteError, match="earlier adapter/ is unchanged.*resumes from checkpoint-6"):
        save_dir_atomically(target, half_then_full, checkpoint=tmp_path / "checkpoint-6")
    assert (target / "adapter_model.safetensors").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no staging folder left behind
    save_dir_atomically(target, lambda folder: (folder / "adapter_model.safetensors").write_text("new"))
    assert (target / "adapter_model.safetensors").read_text() == "new"


def test_a_half_written_checkpoint_is_never_the_latest(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, complete in ((2, True), (4, True), (6, False)):
        path = folder / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        if complete:
            (path / MARKER).write_text("{}")
    assert latest_complete(folder).name == "checkpoint-4"
    (folder / "checkpoint-4" / MARKER).unlink()  # before labkit marked checkpoints: trainer_state.json decides
    (folder / "checkpoint-2" / MARKER).unlink()
    (folder / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # torn
    assert latest_complete(folder).name == "checkpoint-4"


# ------------------------------------------------------------------ (5) --restart, and a finished run

def test_a_finished_run_is_not_trained_again_and_restart_starts_over(one_thread):
    steps = {"train.max_steps": 4, "train.save_steps": 2}
    cfg, run = prepared_run("again", steps)
    first = run_training(cfg, run)
    first_adapter = load_file(run.path("adapter", "adapter_model.safetensors"))

    again = _cli(run, steps)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is already trained (4 steps" in again.stdout
    assert run.load("train_summary") == first

    restarted = _cli(run, steps, "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert ("starting run 'again' over: removing checkpoints (checkpoint-2, checkpoint-4); tb; "
            "logs/train_log.jsonl; adapter; train_summary.json") in restarted.stdout
    summary = run.load("train_summary")
    assert summary["resumed_from"] is None and summary["wall_time_s"] != first["wall_time_s"]
    assert _steps(run) == [1, 2, 3, 4]
    _assert_same_adapter(run.path("adapter"), first_adapter)  # same seed and data: the same result, trained again


# ------------------------------------------------------------------ checks before loads

def test_bad_requests_fail_before_any_model_is_loaded(monkeypatch, capsys):
    from labkit.cli import main
    from labkit.data.prepare import PreparedDataMissing

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the check")

    monkeypatch.setattr(train, "load_for_training", no_load)
    cfg, run = prepared_run("checks", STEPS)
    # settings that differ from those a checkpoint was trained with
    (run.path("logs")).mkdir(exist_ok=True)
    run.path("logs", "train_config.json").write_text(json.dumps(cfg.to_dict()))
    checkpoint = run.path("checkpoints", "checkpoint-2")
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (checkpoint / MARKER).write_text("{}")
    changed, _ = prepared_run("checks", {**STEPS, "train.lr": 5e-4})
    with pytest.raises(ConfigError, match=r"train\.lr.*--restart"):
        run_training(changed, run, resume=True)
    # missing prepared data
    run.path("data", "train.jsonl").unlink()
    with pytest.raises(PreparedDataMissing, match="labkit prepare --run checks"):
        run_training(cfg, run, resume=False)
    # an unknown setting, from the command line
    assert main(["train", "--preset", "smoke", "--run", "checks", "--set", "train.lrr=1"]) == 2
    assert "unknown setting 'train.lrr'" in capsys.readouterr().err


# ------------------------------------------------------------------ under accelerate launch

def _rank(launcher: subprocess.Popen, rank: int):
    import psutil

    for process in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if process.environ().get("RANK") == str(rank) and "labkit.cli" in " ".join(process.cmdline()):
                return process
        except psutil.Error:
            continue
    raise AssertionError(f"no process of rank {rank} under the launcher")


def test_under_accelerate_launch_a_signal_to_one_process_stops_every_process_at_the_same_step():
    """A preemption may reach one process first: both must save the same step (each writes its RNG state into
    the one checkpoint), else the job would hang at the next all-reduce or resume from a mixed checkpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    steps = {"train.max_steps": 200, "train.save_steps": 0, "train.batch_size": 2}
    _, run = prepared_run("ddp-stop", steps, n_train=96, n_val=4)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO / "labkit" / "accelerate" / "ddp.yaml"), "--num_processes", "2", "--main_process_port",
              str(port), *_command(run, steps)[1:]]
    launcher = subprocess.Popen(launch, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        _wait_for(lambda: len(_steps(run)) >= 2, launcher)
        _rank(launcher, 1).send_signal(signal.SIGTERM)
        out, err = launcher.communicate(timeout=600)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    stopped = _steps(run)[-1]
    assert stopped < 200, "the run finished before the signal"
    checkpoints = sorted(p.name for p in run.path("checkpoints").glob("checkpoint-*"))
    assert checkpoints == [f"checkpoint-{stopped}"], (checkpoints, err[-3000:])
    saved = run.path("checkpoints", checkpoints[0])
    assert (saved / MARKER).exists() and (saved / "rng_state_0.pth").exists() and (saved / "rng_state_1.pth").exists()
    assert f"stopped by SIGTERM after step {stopped}" in err
    assert "accelerate launch [the same launch options] -m labkit.cli train --preset smoke" in err


# ------------------------------------------------------------------ labkit notebooks

def test_notebooks_restart_removes_the_earlier_training_and_says_so(monkeypatch, capsys):
    import labkit.nbrun as nbrun
    from labkit.cli import main

    _, run = prepared_run("nb", STEPS)
    for name in ("checkpoint-2", "checkpoint-4"):
        run.path("checkpoints", name).mkdir(parents=True)
    run.path("adapter").mkdir()
    executed = []
    monkeypatch.setattr(nbrun, "run_notebooks", lambda *args, **kwargs: executed.append(args) or [])
    assert main(["notebooks", "--preset", "smoke", "--run", "nb", "--restart"]) == 0
    assert "starting run 'nb' over: removing checkpoints (checkpoint-2, checkpoint-4); adapter" in capsys.readouterr().out
    assert not run.path("checkpoints").exists() and not run.path("adapter").exists() and len(executed) == 1
    assert run.path("data", "train.jsonl").exists()  # the prepared data stays


def test_notebooks_pass_a_stop_signal_to_the_kernel_as_sigint(tmp_path):
    """The kernel runs in a session of its own; labkit's signal must reach it as the stop button's SIGINT."""
    from labkit.stopping import interrupt_children_on_stop

    got = tmp_path / "got"
    kernel = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import signal, sys, time
        signal.signal(signal.SIGINT, lambda *a: (open({str(got)!r}, "w").write("SIGINT"), sys.exit(0)))
        print("ready", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert kernel.stdout.readline().strip() == "ready"
    with interrupt_children_on_stop():
        os.kill(os.getpid(), signal.SIGTERM)  # handled: this process goes on
        kernel.wait(timeout=30)
    assert got.read_text() == "SIGINT"
