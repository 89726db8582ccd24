"""Models of a run for inference: the base model, and the base model with the run's trained LoRA adapter.

Both use the same tokenizer (the one saved with the adapter, i.e. the one training used, with the run's chat
template), so a prompt is rendered identically for both and a side-by-side comparison is fair.
"""

from __future__ import annotations

from typing import Any

from labkit.config import Config
from labkit.infer.modelload import adapter_path, load_eval_model, load_eval_tokenizer
from labkit.runs import MissingInput, Run


class AdapterMissing(MissingInput):
    """The run has no trained adapter yet; the message says how to get one."""


def _missing_message(run: Run) -> str:
    return (f"run {run.name!r} has no adapter yet ({run.path('adapter')} has no adapter_config.json): "
            f"train first (notebook 02 or `labkit train --run {run.name}`)")


def load_base(cfg: Config, run: Run | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of the base model, in eval mode on the configured device.

    With ``run``, the tokenizer is the one saved with its adapter (when there is one), as used in training.
    """
    adapter = adapter_path(run) if run is not None else None
    return load_eval_model(cfg, None), load_eval_tokenizer(cfg, adapter)


def load_tuned(run: Run, cfg: Config | None = None) -> tuple[Any, Any]:
    """(PeftModel, tokenizer): the base model with ``run/adapter`` on top (not merged), in eval mode.

    Raises :class:`AdapterMissing` when the run has not been trained yet.
    """
    cfg = cfg or run.config()
    adapter = adapter_path(run)
    if adapter is None:
        raise AdapterMissing(_missing_message(run))
    return load_eval_model(cfg, adapter, merge=False), load_eval_tokenizer(cfg, adapter)


def load_models(cfg: Config, run: Run) -> dict[str, tuple[Any, Any]]:
    """``{"base": (model, tok), "tuned": (model, tok)}``; only "base" (with a printed note) before training."""
    models = {"base": load_base(cfg, run)}
    try:
        models["tuned"] = load_tuned(run, cfg)
    except AdapterMissing as err:
        print(f"labkit: {err}. Showing the base model only.")
    return models
