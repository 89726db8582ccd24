"""On Colab (its environment markers, a stand-in ``google.colab``) the first cell puts the runs on Google Drive,
unless the user opts out; a notebook whose inputs are missing stops with one line naming who makes them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from colab_standin import MARKERS, mount_calls, write_standin
from labkit.colab import DRIVE_RUNS, DriveNotMounted
from labkit.env import in_colab
from labkit.notebook import start
from labkit.runs import MissingInput, Run


@pytest.fixture()
def colab(tmp_path, monkeypatch):
    """A simulated Colab runtime: markers, ``google.colab`` importable, Drive mounted under tmp, no LABKIT_RUNS."""
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(write_standin(tmp_path / "standin")))
    monkeypatch.delenv("LABKIT_RUNS")
    monkeypatch.delenv("LABKIT_DRIVE", raising=False)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_DRIVE_MOUNT", str(tmp_path / "drive"))
    monkeypatch.setenv("STANDIN_DRIVE_LOG", str(tmp_path / "mounts.log"))
    yield tmp_path
    _forget_standin()


def _forget_standin() -> None:
    for name in ("google.colab", "google.colab.drive"):
        sys.modules.pop(name, None)


def test_colab_is_recognised_by_its_markers_or_its_package(tmp_path, monkeypatch):
    for name in MARKERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("COLAB_GPU", raising=False)
    assert not in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    assert in_colab()
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.syspath_prepend(str(write_standin(tmp_path / "standin")))
    assert in_colab()
    _forget_standin()


def test_on_colab_the_runs_go_to_drive_and_drive_is_mounted_once(colab, capsys):
    cfg, run = start("smoke", "first")
    drive_runs = colab / "drive" / DRIVE_RUNS
    assert run.dir == drive_runs / "first" and (run.dir / "config.json").exists()
    assert mount_calls(colab / "mounts.log") == [str(colab / "drive")]
    printed = capsys.readouterr().out
    assert f"runs:     {drive_runs} on Google Drive" in printed and "(new:" in printed
    _, again = start("smoke", "first")  # the next notebook in the same runtime: Drive is not asked for again
    assert again.dir == run.dir and len(mount_calls(colab / "mounts.log")) == 1
    assert "(new:" not in capsys.readouterr().out


@pytest.mark.parametrize("opt_out", ["env", "argument"])
def test_opting_out_keeps_the_runs_on_the_runtime_disk_and_says_so(colab, monkeypatch, capsys, opt_out):
    if opt_out == "env":
        monkeypatch.setenv("LABKIT_DRIVE", "0")
    _, run = start("smoke", "local", drive=False if opt_out == "argument" else None)
    assert run.dir == colab / "home" / "runs" / "local"
    assert mount_calls(colab / "mounts.log") == []
    assert "not on Google Drive" in capsys.readouterr().out


def test_a_runs_folder_the_user_chose_is_kept(colab, monkeypatch):
    monkeypatch.setenv("LABKIT_RUNS", str(colab / "mine"))
    assert start("smoke", "r")[1].dir == colab / "mine" / "r"
    assert mount_calls(colab / "mounts.log") == []
    on_drive = colab / "drive" / "MyDrive" / "experiments"
    monkeypatch.setenv("LABKIT_RUNS", str(on_drive))
    assert start("smoke", "r")[1].dir == on_drive / "r"
    assert len(mount_calls(colab / "mounts.log")) == 1  # a folder on Drive: Drive mounted first


def test_a_refused_drive_stops_with_one_line_that_says_how_to_go_on(colab, monkeypatch):
    monkeypatch.setenv("STANDIN_DRIVE_REFUSE", "1")
    with pytest.raises(DriveNotMounted, match="credential propagation.*LABKIT_DRIVE=0") as info:
        start("smoke", "r")
    assert info.value._render_traceback_() == [f"DriveNotMounted: {info.value}"]
    assert "\n" not in str(info.value)


def test_off_colab_nothing_changes(tmp_path, capsys):
    _, run = start("smoke", "plain")
    assert run.dir == tmp_path / "runs" / "plain"
    assert f"runs:     {tmp_path / 'runs'} (LABKIT_RUNS" in capsys.readouterr().out


def test_a_notebook_whose_inputs_are_missing_names_who_makes_them_and_where_it_looked(colab):
    start("smoke", "other")
    with pytest.raises(MissingInput) as info:
        start("smoke", "fresh", needs=["prepared"])
    message = str(info.value)
    looked = colab / "drive" / DRIVE_RUNS / "fresh" / "data" / "train.jsonl"
    assert f"{looked} is missing" in message and "notebook 01_data_prep" in message
    assert "`labkit prepare --preset smoke --run fresh`" in message and "runs there: other" in message
    assert "\n" not in message
    assert not (colab / "drive" / DRIVE_RUNS / "fresh").exists(), "a failed start must not create the run"


def test_missing_inputs_show_as_one_line_in_ipython_not_a_traceback(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        result = shell.run_cell("from labkit.runs import MissingInput\nraise MissingInput('run x has no data')")
    finally:
        InteractiveShell.clear_instance()
    assert isinstance(result.error_in_exec, MissingInput)
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert shown == ["MissingInput: run x has no data"]


def test_stage_errors_for_missing_inputs_are_missing_inputs(tmp_path):
    from labkit.data.prepare import PreparedDataMissing, load_prepared
    from labkit.infer.loadrun import AdapterMissing

    assert issubclass(PreparedDataMissing, MissingInput) and issubclass(AdapterMissing, MissingInput)
    with pytest.raises(MissingInput, match="notebook 01"):
        load_prepared(Run.open("empty"), "train")


def test_an_unknown_input_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown stage input 'data'.*prepared"):
        start("smoke", "r", needs=["data"])


def test_labkit_notebooks_gives_its_kernels_the_run_folder(colab, monkeypatch):
    """`labkit notebooks` on Colab: its kernels open the same run and do not try to mount Drive themselves."""
    import papermill

    from labkit.nbrun import run_notebooks
    from labkit.runs import runs_root

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: seen.append(str(runs_root())))
    run = Run.open("cli", root=colab / "elsewhere")
    run_notebooks("smoke", run, only=["01"], progress=False)
    assert seen == [str(colab / "elsewhere")]
    assert "LABKIT_RUNS" not in os.environ  # restored
