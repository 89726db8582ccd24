import json
import os
import signal
import subprocess
import sys

import pytest

from labkit.config import load_config
from labkit.runs import Run, atomic_write_json, list_runs, read_jsonl, runs_root, write_jsonl


def test_run_records_config_and_versions(tmp_path):
    run = Run.open("r1", load_config("smoke"))
    assert run.dir == runs_root() / "r1"
    assert json.loads(run.path("config.json").read_text())["model"]["name"] == "tiny-random-llama"
    assert "transformers" in json.loads(run.path("versions.json").read_text())
    assert run.config() == load_config("smoke")
    assert [r.name for r in list_runs()] == ["r1"]


def test_config_changes_are_logged():
    Run.open("r2", load_config("smoke"))
    run = Run.open("r2", load_config("smoke", ["lora.r=2"]))
    history = read_jsonl(run.path("config_history.jsonl"))
    assert history[-1]["changes"] == ["lora.r: 4 -> 2"]


def test_artifacts_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_RUNS")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    assert Run.open("x").dir == tmp_path / "home" / "runs" / "x"


@pytest.mark.parametrize("bad", ["", "../escape", "a b", "/abs"])
def test_bad_run_names_are_refused(bad):
    with pytest.raises(ValueError, match="run name"):
        Run.open(bad)


def test_missing_stage_output_says_which_stage():
    run = Run.open("r3", load_config("smoke"))
    with pytest.raises(FileNotFoundError, match="'train_summary' has not run"):
        run.load("train_summary")


def test_jsonl_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"b": "é"}]) == 2
    assert read_jsonl(path) == [{"a": 1}, {"b": "é"}]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_jsonl(path)


def test_atomic_write_leaves_old_file_when_killed(tmp_path):
    """A writer killed mid-write never leaves a half-written JSON file behind."""
    target = tmp_path / "result.json"
    atomic_write_json(target, {"complete": True})
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import labkit.runs as runs\n"
        "real = os.fsync\n"
        "def die(fd):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.fsync = die\n"
        f"runs.atomic_write_json(Path({str(target)!r}), {{'complete': False, 'big': 'x' * 1000000}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ.copy())
    assert proc.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"complete": True}
