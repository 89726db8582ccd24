"""Resume after a hard kill gives the same adapter and losses as an uninterrupted run; logs are not duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train_support import prepared_run

STEPS = {"train.max_steps": 6, "train.save_steps": 2, "train.save_total_limit": 3, "train.eval_steps": 3}
KILL_AFTER_STEP = 5  # checkpoint-4 exists; step 5 is logged; step 6 never happens

# Runs the training in a child process and SIGKILLs it right after step 5 was logged (a deterministic point
# "mid-run after a checkpoint exists": the kill cannot race past the end of the run on a fast machine).
CHILD = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    import labkit.train.trainer as train
    from labkit.runs import Run

    class KillAt(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == {step} and "loss" in (logs or {{}}):
                os.kill(os.getpid(), signal.SIGKILL)

    build = train.build_trainer
    def build_with_kill(*a, **k):
        trainer = build(*a, **k)
        trainer.add_callback(KillAt())
        return trainer
    train.build_trainer = build_with_kill
    run = Run.existing(sys.argv[1])
    train.run_training(run.config(), run)
""")


def _adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def _train_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "logs" / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_killed_run_resumes_to_the_same_result(tmp_path):
    from labkit.train.trainer import run_training

    cfg, reference = prepared_run("reference", STEPS)
    full = run_training(cfg, reference)

    cfg2, run = prepared_run("killed", STEPS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.getcwd()])}
    child = subprocess.run([sys.executable, "-c", CHILD.format(step=KILL_AFTER_STEP), run.name], env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert sorted(p.name for p in run.path("checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert max(r["step"] for r in _train_records(run.dir)) == KILL_AFTER_STEP
    assert not run.path("adapter").exists()

    resumed = run_training(cfg2, run, resume=True)

    assert resumed["resumed_from"].endswith("checkpoint-4")
    assert resumed["steps"] == full["steps"] == 6
    want, got = _adapter(reference.dir), _adapter(run.dir)
    assert want.keys() == got.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)
    assert resumed["final_train_loss"] == pytest.approx(full["final_train_loss"], rel=1e-5)
    assert resumed["final_eval_loss"] == pytest.approx(full["final_eval_loss"], rel=1e-5)
    assert resumed["base_eval_loss"] == full["base_eval_loss"]
    # The log holds each step once (the killed run's step 5 was dropped and redone), with the same losses.
    steps = [r["step"] for r in _train_records(run.dir) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    losses = {r["step"]: r["loss"] for r in _train_records(run.dir) if r["kind"] == "train"}
    want_losses = {r["step"]: r["loss"] for r in _train_records(reference.dir) if r["kind"] == "train"}
    assert losses == pytest.approx(want_losses, rel=1e-5)
    assert resumed["trained_tokens"] == full["trained_tokens"]
