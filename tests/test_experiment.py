"""Experiments with fake stages: cell names, resume after an interruption, the results table."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from labkit.config import ConfigError
from labkit.analysis.experiment import DONE, Experiment, ExperimentError, Stages


class FakeStages:
    """Counts calls per (stage, run); training writes a summary whose loss depends on the settings."""

    def __init__(self, fail_on: str | None = None):
        self.calls: Counter = Counter()
        self.fail_on = fail_on

    def prepare(self, cfg, run):
        self.calls["prepare", run.name] += 1

    def train(self, cfg, run):
        self.calls["train", run.name] += 1
        if run.name == self.fail_on:
            raise KeyboardInterrupt  # as if the user stopped the notebook in the middle of this cell
        loss = 3.0 - cfg.data.limit / 100 + cfg.train.seed / 1000
        run.record("train_summary", {"final_eval_loss": loss, "steps": cfg.train.max_steps, "tokens_per_s": 10.0})

    def evaluate(self, cfg, run):
        self.calls["evaluate", run.name] += 1

    def stages(self) -> Stages:
        return Stages(self.prepare, self.train, self.evaluate)


def make(tmp_path, fake: FakeStages, **kwargs) -> Experiment:
    options = {"grid": {"data.limit": [8, 16], "lora.r": [2, 4]}, "seeds": [1, 2], "preset": "smoke"} | kwargs
    return Experiment("exp", stages=fake.stages(), folder=tmp_path / "exp", **options)


def test_cells_are_named_by_their_settings_and_seed(tmp_path):
    exp = make(tmp_path, FakeStages())
    names = [c.run_name for c in exp.cells()]
    assert len(names) == 8 and names[0] == "exp-limit_8-r_2-s1" and names[-1] == "exp-limit_16-r_4-s2"
    assert exp.configs["exp-limit_16-r_2-s2"].data.limit == 16
    assert exp.configs["exp-limit_16-r_2-s2"].train.seed == 2


def test_an_interrupted_grid_resumes_without_repeating_finished_cells(tmp_path):
    first = FakeStages(fail_on="exp-limit_16-r_2-s1")  # the fifth of eight cells
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, first).run()
    finished = [name for (stage, name), n in first.calls.items() if stage == "evaluate"]
    assert len(finished) == 4
    partial = pd.read_csv(tmp_path / "exp" / "results.csv")
    assert list(partial["status"]).count("done") == 4

    second = FakeStages()
    table = make(tmp_path, second).run()
    assert not any(name in finished for (_, name) in second.calls)  # nothing finished is repeated
    assert second.calls["prepare", "exp-limit_16-r_2-s1"] == 1       # the interrupted cell is redone
    assert sum(1 for stage, _ in second.calls if stage == "evaluate") == 4
    assert set(table["status"]) == {"done"}

    third = FakeStages()
    make(tmp_path, third).run()
    assert not third.calls


def test_results_table_and_summary_are_saved(tmp_path):
    make(tmp_path, FakeStages()).run()
    table = pd.read_csv(tmp_path / "exp" / "results.csv")
    assert len(table) == 8 and {"data.limit", "lora.r", "seed", "final_eval_loss", "tokens_per_s"} <= set(table)
    row = table[(table["data.limit"] == 16) & (table["lora.r"] == 4) & (table["seed"] == 2)].iloc[0]
    assert row["final_eval_loss"] == pytest.approx(3.0 - 0.16 + 0.002)
    assert len(json.loads((tmp_path / "exp" / "results.json").read_text())) == 8
    summary = pd.read_csv(tmp_path / "exp" / "summary.csv", header=[0, 1], index_col=[0, 1])
    assert summary.loc[(8, 2), ("final_eval_loss", "mean")] == pytest.approx(3.0 - 0.08 + 0.0015)
    assert summary.loc[(8, 2), ("final_eval_loss", "count")] == 2


class OutOfMemoryOnRank4Seed1(FakeStages):
    def train(self, cfg, run):
        if run.name.endswith("r_4-s1"):
            raise RuntimeError("out of memory")
        super().train(cfg, run)


def test_on_error_continue_records_the_error_and_finishes_the_rest(tmp_path):
    table = make(tmp_path, OutOfMemoryOnRank4Seed1()).run(on_error="continue")
    failed = table[table["status"] == "failed"]
    assert len(failed) == 2 and failed["error"].str.contains("out of memory").all()
    assert (table["status"] == "done").sum() == 6


def test_a_finished_run_with_other_settings_is_not_silently_reused(tmp_path):
    make(tmp_path, FakeStages(), grid={"data.limit": [8]}, seeds=[1]).run()
    changed = make(tmp_path, FakeStages(), grid={"data.limit": [8]}, seeds=[1], overrides={"train.lr": 0.5})
    with pytest.raises(ExperimentError, match="train.lr: 0.001 -> 0.5"):
        changed.run()


@pytest.mark.parametrize("grid, seeds, message", [
    ({}, [1], "one or two settings"),
    ({"data.limit": [8], "lora.r": [2], "lora.alpha": [4]}, [1], "one or two settings"),
    ({"train.seed": [1, 2]}, [1], "set by seeds"),
    ({"data.limit": []}, [1], "non-empty list"),
    ({"data.limit": [8, 8]}, [1], "repeats a value"),
    ({"data.limit": [8]}, [1, 1], "distinct integers"),
])
def test_bad_grids_are_refused_with_a_reason(tmp_path, grid, seeds, message):
    with pytest.raises(ExperimentError, match=message):
        make(tmp_path, FakeStages(), grid=grid, seeds=seeds)


def test_bad_setting_names_and_values_fail_before_anything_runs(tmp_path):
    fake = FakeStages()
    with pytest.raises(ConfigError, match="lora.rank"):
        make(tmp_path, fake, grid={"lora.rank": [2]})
    with pytest.raises(ConfigError, match="lora.r"):
        make(tmp_path, fake, grid={"lora.r": [4, -1]})
    assert not fake.calls


def test_done_marker_records_the_cell(tmp_path):
    exp = make(tmp_path, FakeStages(), grid={"lora.use_rslora": [False, True]}, seeds=[3])
    exp.run()
    names = [c.run_name for c in exp.cells()]
    assert names == ["exp-use_rslora_false-s3", "exp-use_rslora_true-s3"]
    marker = json.loads((tmp_path / "runs" / names[1] / DONE).read_text())
    assert marker["values"] == {"lora.use_rslora": True} and marker["seed"] == 3
    assert marker["machine"]["cpu_cores"] >= 1 and marker["machine"]["ram_gib"] > 0  # the report prints these


def test_command_rebuilds_the_same_experiment(tmp_path):
    exp = make(tmp_path, FakeStages(), overrides={"train.lr": 0.5})
    assert exp.command() == ("labkit experiment --name exp --preset smoke --grid data.limit=8,16 --grid lora.r=2,4 "
                             "--seeds 1,2 --set train.lr=0.5")
