"""Experiment trackers (``train.report_to``): TensorBoard through labkit's own writer, the others through TRL.

The Trainer already ships callbacks for Weights & Biases, trackio and MLflow; labkit hands their names to
``SFTConfig.report_to`` and lets those callbacks do the work. TensorBoard stays with labkit's
:class:`~labkit.train.callbacks.LogWriter` (stable tag names, and a resumed run purges the steps it re-does), so
"tensorboard" is not passed on. labkit's own metrics (tokens/s, trained tokens, memory) reach every tracker
because the trainer adds them to the logs dict the Trainer hands to all its callbacks.
"""

from __future__ import annotations

import importlib.util

from labkit.config import ConfigError

OWN_WRITER = "tensorboard"
# tracker -> (module the Trainer imports, the command that installs it)
PACKAGES = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "wandb": ("wandb", "pip install wandb"),
    "trackio": ("trackio", "pip install trackio"),
    "mlflow": ("mlflow", "pip install mlflow"),
}


def missing_trackers(report_to: list[str]) -> list[str]:
    """The trackers in ``report_to`` whose package cannot be imported here."""
    return [name for name in report_to if importlib.util.find_spec(PACKAGES[name][0]) is None]


def check_trackers(report_to: list[str]) -> None:
    """Fail before training starts (before the model loads) when a chosen tracker is not installed."""
    missing = missing_trackers(report_to)
    if missing:
        commands = "; ".join(PACKAGES[name][1] for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(f"train.report_to={report_to} names {', '.join(missing)}, which {verb} not installed: "
                          f"{commands} (or remove it from train.report_to)")


def trainer_report_to(report_to: list[str]) -> list[str] | str:
    """What ``SFTConfig.report_to`` gets: the chosen trackers except TensorBoard (labkit writes that one), or
    "none" (the Trainer would otherwise report to every tracker it finds installed)."""
    others = [name for name in report_to if name != OWN_WRITER]
    return others or "none"


def uses_own_writer(report_to: list[str]) -> bool:
    return OWN_WRITER in report_to
