"""train.report_to: the key is documented and validated, a missing tracker package fails before training with the
install command, and a run trained with MLflow (a local file store) finds its loss and labkit's own metrics there."""

from __future__ import annotations

import importlib.util

import pytest

from labkit.config import ConfigError, field_doc, load_config
from labkit.train.trackers import check_trackers, trainer_report_to
from train_support import prepared_run


def test_report_to_is_documented_validated_and_defaults_to_tensorboard():
    assert "wandb" in field_doc("train.report_to") and "mlflow" in field_doc("train.report_to")
    assert load_config("smoke").train.report_to == ["tensorboard"]
    assert load_config("smoke", ["train.report_to=tensorboard,mlflow"]).train.report_to == ["tensorboard", "mlflow"]
    assert load_config("smoke", ["train.report_to=[]"]).train.report_to == []
    with pytest.raises(ConfigError, match=r"train.report_to=\['neptune'\] is invalid: each entry must be one of"):
        load_config("smoke", ["train.report_to=neptune"])


def test_tensorboard_stays_with_labkit_and_the_others_go_to_the_trainer():
    assert trainer_report_to(["tensorboard"]) == "none"
    assert trainer_report_to([]) == "none"
    assert trainer_report_to(["tensorboard", "wandb", "trackio"]) == ["wandb", "trackio"]


def test_a_missing_tracker_package_fails_before_training_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"names wandb, which is not installed: pip install wandb"):
        check_trackers(["tensorboard", "wandb"])
    from labkit.train.trainer import run_training

    cfg, run = prepared_run("no-wandb", {"train.report_to": "wandb"})
    with pytest.raises(ConfigError, match="pip install wandb"):
        run_training(cfg, run)
    assert not run.path("logs", "train_config.json").exists()  # refused before anything was written or loaded


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                    reason="mlflow is not installed: pip install mlflow-skinny (the 'dev' extra should carry it)")
def test_training_logs_loss_and_labkit_metrics_to_an_mlflow_file_store(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from labkit.runs import read_log
    from labkit.train.trainer import run_training

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "labkit-test")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow-skinny has no SQL store; a file store suffices
    cfg, run = prepared_run("mlflow", {"train.max_steps": 3, "train.save_steps": 0, "train.report_to": "mlflow"})
    run_training(cfg, run)

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("labkit-test")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "mlflow" and found.info.status == "FINISHED"
    logged = [r for r in read_log(run.path("logs", "train_log.jsonl")) if r["kind"] == "train"]
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    for key in ("trained_tokens_per_s", "tokens_per_s", "trained_tokens", "peak_rss_mb"):  # labkit's own metrics
        values = [m.value for m in client.get_metric_history(found.info.run_id, key)]
        assert values == pytest.approx([r[key] for r in logged], rel=1e-6), key
    assert not run.path("tb").exists()  # tensorboard was not chosen: labkit's writer stayed off
