"""`labkit experiment`, `labkit reference` and `labkit report` on fabricated runs (fake stages, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import config_snapshot, fake_outputs, fake_run

from labkit import cli
from labkit.analysis import commands
from labkit.analysis.experiment import Experiment, ExperimentError, Stages, skip_evaluation
from labkit.analysis.reference import EXPERIMENTS, reference_experiment


@pytest.fixture(autouse=True)
def reports_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_REPORTS", str(tmp_path / "reports"))


class Fake:
    """Stages that fabricate training and evaluation outputs; ``stop_at`` interrupts that cell's training."""

    def __init__(self, stop_at: str | None = None, fail: str | None = None):
        self.trained: list[str] = []
        self.stop_at, self.fail = stop_at, fail

    def train(self, cfg, run):
        self.trained.append(run.name)
        if run.name == self.stop_at:
            raise KeyboardInterrupt
        if run.name == self.fail:
            raise RuntimeError("out of memory")
        fake_outputs(cfg, run)

    def stages(self) -> Stages:
        return Stages(lambda cfg, run: None, self.train, lambda cfg, run: None)


ARGS = ["experiment", "--name", "ds", "--preset", "smoke", "--grid", "data.limit=8,16", "--seeds", "1,2",
        "--set", "lora.r=4"]


def run_cli(argv: list[str], fake: Fake):
    args = cli.build_parser().parse_args(argv)
    return args.func(args, stages=fake.stages())


def test_grid_options_give_the_same_runs_and_configs_as_python():
    from_cli = commands.build_experiment(cli.build_parser().parse_args(ARGS))
    in_python = Experiment("ds", {"data.limit": [8, 16]}, [1, 2], "smoke", {"lora.r": 4})
    assert [c.run_name for c in from_cli.cells()] == ["ds-limit_8-s1", "ds-limit_8-s2", "ds-limit_16-s1",
                                                     "ds-limit_16-s2"]
    assert from_cli.grid == {"data.limit": [8, 16]}  # typed as the config reads them, not "8"
    assert {n: c.to_dict() for n, c in from_cli.configs.items()} == {
        n: c.to_dict() for n, c in in_python.configs.items()}
    again = commands.build_experiment(cli.build_parser().parse_args(from_cli.command().split()[1:]))
    assert again.configs == from_cli.configs  # the command written into the report rebuilds the experiment


def test_reference_experiments_match_their_definitions():
    data_size = commands.build_experiment(cli.build_parser().parse_args(["experiment", "data-size"]))
    lead = Experiment("data-size", {"data.limit": [50, 150, 400]}, seeds=[42, 7], preset="cpu-demo",
                      overrides={"data.val_rows": 20, "data.val_seed": 0})
    assert data_size.configs == lead.configs and data_size.overrides == lead.overrides
    sizes = reference_experiment("size-vs-tuning")
    assert [c.run_name for c in sizes.cells()] == ["size-vs-tuning-name_smollm2_135m_instruct-s42",
                                                   "size-vs-tuning-name_gemma3_270m-s42"]
    assert set(EXPERIMENTS) == {"data-size", "size-vs-tuning", "seeds-data-size", "lora-vs-rslora"}
    rslora = reference_experiment("lora-vs-rslora")
    assert len(rslora.cells()) == 12 and rslora.grid == {"lora.r": [4, 16, 64], "lora.use_rslora": [False, True]}
    seeds = reference_experiment("seeds-data-size")
    assert seeds.seeds == [42, 7, 1234] and len(seeds.cells()) == 9
    for name in ("data-size", "seeds-data-size", "lora-vs-rslora"):  # one validation set for every cell
        configs = reference_experiment(name).configs.values()
        assert {(c.data.val_rows, c.data.val_seed) for c in configs} == {(20, 0)}


def test_experiment_command_resumes_and_writes_its_report(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        run_cli(ARGS, Fake(stop_at="ds-limit_16-s1"))
    second = Fake()
    result = run_cli(ARGS, second)
    assert second.trained == ["ds-limit_16-s1", "ds-limit_16-s2"]  # finished cells are not redone
    out = capsys.readouterr().out
    assert "2 of 4 cells done, 2 to run" in out and "[2/2] ds-limit_16-s2 done in" in out
    folder = tmp_path / "reports" / "ds"
    assert result["dir"] == str(folder) and result["failed"] == []
    assert {p.name for p in folder.iterdir()} == {f"{stem}.{suffix}" for stem in
                                                 ("loss_curves", "throughput_memory", "data_size")
                                                 for suffix in ("png", "svg")} | {"summary.md"}
    summary = (folder / "summary.md").read_text()
    assert "labkit experiment --name ds --preset smoke --grid data.limit=8,16 --seeds 1,2 --set lora.r=4" in summary
    assert "measured on each run's own validation split" in summary
    third = Fake()
    run_cli(ARGS, third)
    assert third.trained == []


def test_a_fixed_validation_set_is_named_in_the_report(tmp_path):
    result = run_cli([*ARGS, "--name", "dsv", "--set", "data.val_rows=3"], Fake())
    summary = (Path(result["dir"]) / "summary.md").read_text()
    assert "one fixed validation set: data.val_rows=3 rows of each source" in summary
    assert "--set data.val_rows=3" in summary


def test_lora_vs_rslora_cells_skip_the_task_evaluation_and_the_report_says_so(tmp_path):
    assert reference_experiment("lora-vs-rslora").stages.evaluate is skip_evaluation
    assert not reference_experiment("lora-vs-rslora").evaluates and reference_experiment("data-size").evaluates
    evaluated: list[str] = []
    for name, evaluate in (("with", lambda cfg, run: evaluated.append(run.name)), ("without", skip_evaluation)):
        fake = Fake()
        experiment = Experiment(name, {"data.limit": [8]}, [1], "smoke",
                                stages=Stages(lambda cfg, run: None, fake.train, evaluate))
        experiment.run()
        summary = (Path(experiment.report()["dir"]) / "summary.md").read_text()
        assert fake.trained == [f"{name}-limit_8-s1"]
        assert ("skip the task evaluation" in summary) == (name == "without")
        assert ("same held-out test items" in summary) == (name == "with")
    assert evaluated == ["with-limit_8-s1"]


def test_report_only_runs_nothing(tmp_path):
    fake = Fake()
    run_cli([*ARGS, "--report-only", "--out", str(tmp_path / "out")], fake)
    assert fake.trained == [] and "Finished: 0 of 4 runs." in (tmp_path / "out" / "summary.md").read_text()


def test_failed_cells_end_with_an_error_after_the_report(tmp_path, capsys):
    code = cli.main(["experiment", "--name", "bad", "--preset", "smoke", "--grid", "data.limit=8,16",
                     "--report-only"])
    assert code == 0
    with pytest.raises(RuntimeError, match="1 cell\\(s\\) failed \\(bad-limit_16-s42\\)"):
        run_cli(["experiment", "--name", "bad", "--preset", "smoke", "--grid", "data.limit=8,16"],
                Fake(fail="bad-limit_16-s42"))
    assert "Finished: 1 of 2 runs." in (tmp_path / "reports" / "bad" / "summary.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["experiment"], "name a reference experiment"),
    (["experiment", "nope"], "no reference experiment 'nope'"),
    (["experiment", "data-size", "--seeds", "1"], "fixed settings"),
    (["experiment", "--name", "x", "--grid", "data.limit"], "must look like KEY=V1,V2"),
    (["experiment", "--name", "x", "--grid", "data.limit=8,,16"], "empty value"),
    (["experiment", "--name", "x", "--grid", "data.limit=8", "--grid", "data.limit=16"], "given twice"),
    (["experiment", "--name", "x", "--grid", "data.limit=8,8"], "repeats a value"),
    (["experiment", "--name", "x", "--grid", "data.limit=8", "--seeds", "1,a"], "comma-separated integers"),
    (["experiment", "--name", "x", "--grid", "data.limt=8"], "did you mean data.limit"),
    (["experiment", "--name", "x", "--grid", "lora.r=4,-1"], "lora.r=-1 is invalid"),
])
def test_bad_experiment_options_end_with_one_clear_line(argv, message, capsys, tmp_path):
    assert cli.main(argv) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_experiment_error_is_a_value_error():
    assert issubclass(ExperimentError, ValueError)


def test_report_reads_the_run_and_never_rewrites_its_config(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    fake_run(root, "a", {"data.limit": 8}, 1)
    fake_run(root, "b", {"data.limit": 16}, 1)
    before = config_snapshot(root)
    # --preset and --set are not report options: the report uses the run's own config.json
    with pytest.raises(SystemExit):
        cli.main(["report", "--run", "a", "--preset", "cpu-demo"])
    assert cli.main(["report", "--run", "a", "--only-run", "--out", str(tmp_path / "only-a")]) == 0
    assert cli.main(["report", "--run", "a"]) == 0
    assert config_snapshot(root) == before and not (root / "a" / "config_history.jsonl").exists()
    only = (tmp_path / "only-a" / "summary.md").read_text()
    assert "| a |" in only and "| b |" not in only and "Runs: 1" in only
    assert "labkit report --run a --only-run --out" in only
    assert "| b |" in (tmp_path / "reports" / "a" / "summary.md").read_text()  # default: every run


def test_report_of_a_missing_run_is_one_clear_line(capsys):
    assert cli.main(["report", "--run", "ghost"]) == 1
    assert "no run 'ghost'" in capsys.readouterr().err


def test_reference_report_only_writes_every_reference_report(tmp_path, monkeypatch):
    demo = fake_run(tmp_path / "runs", "demo", {}, 42)
    demo.record("notebooks", [{"notebook": "01_data_prep.ipynb", "seconds": 60.0}])
    result = run_cli(["reference", "--report-only"], Fake())
    assert set(result) == {"demo", "data-size", "size-vs-tuning", "seeds-data-size", "lora-vs-rslora"}
    demo_summary = (tmp_path / "reports" / "cpu-demo" / "summary.md").read_text()
    assert "labkit notebooks --preset cpu-demo --run demo" in demo_summary
    assert "Run time: 1 min" in demo_summary
    assert not (tmp_path / "reports" / "cpu-demo" / "data_size.png").exists() and "Skipped" not in demo_summary
    assert "Finished: 0 of 6 runs." in (tmp_path / "reports" / "data-size" / "summary.md").read_text()
    assert "Finished: 0 of 12 runs." in (tmp_path / "reports" / "lora-vs-rslora" / "summary.md").read_text()


def test_only_the_main_process_prints_a_command_result(capsys, monkeypatch):
    from labkit.cli import _emit

    monkeypatch.setenv("RANK", "1")
    _emit({"loss": 1.0}, as_json=True)
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    _emit({"loss": 1.0}, as_json=True)
    assert '"loss": 1.0' in capsys.readouterr().out
