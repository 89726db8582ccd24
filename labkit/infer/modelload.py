"""Models for evaluation: the base model, and the base model with the run's LoRA adapter merged in.

Both get the tokenizer with the run's chat template, so the prompts are rendered exactly as in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.config import Config

ADAPTER_DIR = "adapter"


def adapter_path(run) -> Path | None:
    """The run's trained adapter folder, or None when training has not written one."""
    folder = run.path(ADAPTER_DIR)
    return folder if (folder / "adapter_config.json").exists() else None


def load_eval_tokenizer(cfg: Config, adapter: Path | None = None):
    """The tokenizer saved with the adapter when there is one (it is what training used), else the base one."""
    from transformers import AutoTokenizer

    from labkit.templates import ensure_chat_template
    from labkit.models import load_tokenizer

    if adapter is not None and (adapter / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(adapter)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer = load_tokenizer(cfg.model.name)
    return ensure_chat_template(tokenizer, cfg.data.chat_template)


def eval_device_and_dtype(cfg: Config) -> tuple[str, str]:
    from labkit.env import pick_device
    from labkit.train.loading import resolve_dtype

    device = pick_device(cfg.model.device)
    return device, resolve_dtype(cfg.model.dtype, device)


def load_eval_model(cfg: Config, adapter: Path | None = None, merge: bool = True) -> Any:
    """The base model (adapter None) or base + adapter, in eval mode on the configured device.

    The adapter is merged into the weights for speed (generation then costs what the base model costs);
    a 4-bit base is left unmerged, because merging into quantised weights rounds the adapter away.
    """
    from labkit.models import load_causal_lm

    device, dtype = eval_device_and_dtype(cfg)
    model = load_causal_lm(cfg.model.name, device=device, dtype=dtype)
    if adapter is None:
        return model
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, str(adapter))
    if merge and not cfg.model.load_in_4bit:
        model = model.merge_and_unload()
    return model.eval()
