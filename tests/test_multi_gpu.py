"""Multi-process (DDP) training through ``accelerate launch``, on 2 CPU processes over gloo.

The same ``labkit/accelerate/ddp.yaml`` that runs one process per GPU runs N CPU processes where there is no
CUDA (labkit then asks accelerate for its gloo CPU state). Two runs with the same global batch of 4 packed
rows: 2 processes x batch 2, and one plain process x batch 4. They must see the same rows at every step, so
the loss curves agree to float32 round-off, and the 2-process run folder must hold one copy of everything.
The 4 steps stay inside the first epoch: at an epoch's end accelerate evens out the processes' last batches
by repeating rows, so that one step differs from a single-process run (documented in the README).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from train_support import prepared_run

REPO = Path(__file__).resolve().parents[1]
DDP_CONFIG = REPO / "labkit" / "accelerate" / "ddp.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch_problem() -> str | None:
    """Why this machine cannot start 2 connected CPU processes (None: it can).

    Checked BEFORE launching: once the processes run, any failure is labkit's (a crash in one rank shows up
    as "Connection refused" in the other, so messages after launch say nothing about the machine).
    """
    if importlib.util.find_spec("accelerate") is None:
        return "accelerate is not installed"
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=5):
                pass
    except OSError as err:
        return f"no TCP connection over 127.0.0.1 on this machine ({err})"
    return None


def _rank_logs(log_dir: Path) -> str:
    """Each rank's stdout and stderr as torch's launcher wrote them (``--log_dir`` with ``--tee 3``)."""
    parts = []
    for path in sorted(log_dir.rglob("std*.log")):
        text = path.read_text(errors="replace").strip()
        parts.append(f"--- rank {path.parent.name}, {path.stem} ({path}) ---\n{text[-3000:] if text else '(empty)'}")
    return "\n".join(parts) or f"(no rank logs under {log_dir})"


def _train(run: str, overrides: list[str], processes: int, log_dir: Path) -> None:
    sets = [item for value in overrides for item in ("--set", value)]
    cli = ["-m", "labkit.cli", "train", "--preset", "smoke", "--run", run, *sets]
    if processes == 1:
        command = [sys.executable, *cli]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CONFIG),
                   "--num_processes", str(processes), "--main_process_port", str(_free_port()),
                   "--log_dir", str(log_dir), "--tee", "3", *cli]
    env = {**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        ranks = f"\nper-rank output:\n{_rank_logs(log_dir)}" if processes > 1 else ""
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n"
                             f"{(done.stdout + done.stderr)[-3000:]}{ranks}")


def _log(run_dir: Path) -> list[dict]:
    lines = (run_dir / "logs" / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)), "duplicate lines in train_log.jsonl"
    return [json.loads(line) for line in lines]


def _train_records(records: list[dict]) -> dict[int, dict]:
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == sorted(set(steps)), f"each step must be logged once, in order: {steps}"
    return {r["step"]: r for r in records if r["kind"] == "train"}


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    problem = _launch_problem()
    if problem:
        pytest.skip(f"cannot start 2 CPU processes here: {problem}")
    common = {"train.max_steps": 4, "train.save_steps": 2, "train.lr": 1e-2}
    cfg, ddp = prepared_run("ddp2", common, n_train=96, n_val=4)
    _, single = prepared_run("single", common, n_train=96, n_val=4)
    base = [f"data.sources={cfg.data.sources[0]}", "train.eval_steps=0",
            *(f"{key}={value}" for key, value in common.items())]
    _train("ddp2", [*base, "train.batch_size=2"], processes=2, log_dir=tmp_path / "ranks")  # 2 x 2 rows a step
    _train("single", [*base, "train.batch_size=4"], processes=1, log_dir=tmp_path / "single")  # 1 x 4

    summary = json.loads((ddp.path("train_summary.json")).read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    assert sorted(p.name for p in ddp.path("logs").iterdir()) == ["base_eval.json", "train_config.json",
                                                                  "train_log.jsonl"]
    assert len(list(ddp.path("tb").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in ddp.path("checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (ddp.path("adapter", "adapter_model.safetensors")).exists()
    history = ddp.path("config_history.jsonl")
    # the CLI's overrides differ from prepared_run's config: one entry, written once (by rank 0 only)
    assert history.exists(), f"{history} is missing: the changed config was not recorded"
    assert len(history.read_text().splitlines()) == 1

    two, one = _train_records(_log(ddp.dir)), _train_records(_log(single.dir))
    assert sorted(two) == sorted(one) == [1, 2, 3, 4]
    for step in one:
        # The same rows at the same step (token counts are summed over the 2 processes)...
        assert two[step]["tokens"] == one[step]["tokens"], f"step {step}: different data"
        assert two[step]["trained_tokens"] == one[step]["trained_tokens"]
        assert two[step]["world_size"] == 2 and "tokens_per_s_per_rank" in two[step]
        # ...so the same loss, up to the order of float32 sums (observed: equal to 1e-6).
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], abs=1e-4), f"step {step}"
    assert summary["tokens"] == sum(r["tokens"] for r in one.values())


def test_the_bench_launches_with_the_accelerate_config_asked_for(tmp_path, monkeypatch):
    from benchmarks import multi_gpu

    commands = []
    monkeypatch.setattr(multi_gpu, "run_command", lambda command, *a, **k: (commands.append(command) or (1, "")))
    args = multi_gpu.parse_args(["--out", str(tmp_path), "--tokenizer", "t", "--accelerate-config", "fsdp"])
    config = {"label": "2x4", "processes": 2, "per_device_batch": 4, "accumulate": 1}
    result = multi_gpu.launch(args, config, timeout=1, log=None)
    assert "error" in result   # the stand-in launch failed, and the row says so
    assert commands[0][commands[0].index("--config_file") + 1] == str(REPO / "labkit" / "accelerate" / "fsdp.yaml")
    default = multi_gpu.parse_args(["--out", str(tmp_path), "--tokenizer", "t"])
    assert default.accelerate_config == "ddp"


def test_fsdp_is_refused_for_the_unsloth_backend(tmp_path, capsys):
    from benchmarks import multi_gpu

    with pytest.raises(SystemExit):
        multi_gpu.parse_args(["--out", str(tmp_path), "--tokenizer", "t", "--accelerate-config", "fsdp",
                              "--backend", "unsloth"])
    assert "fsdp.yaml is for --backend transformers" in capsys.readouterr().err
