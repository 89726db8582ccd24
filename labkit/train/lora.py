"""The LoRA adapter: labkit's :class:`~labkit.config.LoraConfig` -> ``peft.LoraConfig``, and what it trains.

Named target sets are spelled with the Llama-family layer names (Llama, SmolLM2, Gemma, Qwen, Mistral all use
them). For a model whose layers are named differently, ``all-linear`` falls back to PEFT's own ``"all-linear"``
(every linear layer but the output head) and ``attention`` / ``mlp`` stop with an error asking for a list.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.config import ConfigError, LoraConfig

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
TARGET_SETS: dict[str, tuple[str, ...]] = {"attention": ATTENTION, "mlp": MLP, "all-linear": ATTENTION + MLP}


def _linear_leaf_names(model) -> set[str]:
    import torch

    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}


def resolve_target_modules(spec: str | list, model=None) -> list[str] | str:
    """The module names PEFT should wrap; checked against ``model`` when one is given.

    Returns an explicit list (what Unsloth needs and what ``adapter_config.json`` then records), or PEFT's
    ``"all-linear"`` for an ``all-linear`` request on a model without Llama-style layer names.
    """
    if isinstance(spec, str):
        if spec not in TARGET_SETS:
            raise ConfigError(f"lora.target_modules={spec!r} is invalid: use one of {', '.join(TARGET_SETS)} or a list")
        wanted = list(TARGET_SETS[spec])
    else:
        wanted = [str(name) for name in spec]
        if not wanted:
            raise ConfigError("lora.target_modules=[] is invalid: name at least one layer, e.g. [q_proj, v_proj]")
    if model is None:
        return wanted
    present = _linear_leaf_names(model)
    missing = [name for name in wanted if name not in present]
    if not missing:
        return wanted
    if spec == "all-linear":
        return "all-linear"
    raise ConfigError(f"lora.target_modules={spec!r}: the model has no linear layer named {', '.join(missing)}; "
                      f"its linear layers are {', '.join(sorted(present))}")


def peft_config(lora: LoraConfig, model=None):
    """The ``peft.LoraConfig`` for a causal LM, with every labkit setting carried over."""
    import peft

    return peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=resolve_target_modules(lora.target_modules, model),
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
        bias="none",
    )


def apply_lora(model, lora: LoraConfig):
    """Wrap ``model`` with a fresh LoRA adapter (B initialised to zero: the wrapped model equals the base)."""
    import peft

    return peft.get_peft_model(model, peft_config(lora, model))


@dataclass(frozen=True)
class TrainableParams:
    trainable: int
    total: int

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (f"trainable params: {self.trainable:,} of {self.total:,} ({100 * self.share:.2f}%)")

    def to_dict(self) -> dict:
        return {"trainable": self.trainable, "total": self.total, "share": self.share}


def count_trainable(model) -> TrainableParams:
    """Trainable vs all parameters. 4-bit weights are packed two per byte, so they count double (as PEFT does)."""
    trainable = total = 0
    for param in model.parameters():
        count = param.numel()
        if param.__class__.__name__ == "Params4bit":
            count *= 2
        total += count
        if param.requires_grad:
            trainable += count
    return TrainableParams(trainable, total)
