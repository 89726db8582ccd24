"""Loading a model for training, per device: Unsloth on CUDA when present, else transformers + PEFT.

- backend: ``auto`` uses Unsloth on CUDA when it is installed; ``unsloth`` insists on it; ``transformers``
  always takes the plain transformers + PEFT path (the only one on CPU / MPS).
- dtype: ``auto`` is bf16 where the GPU computes it natively (compute capability 8.0 or newer: A100, L4, H100),
  fp16 otherwise (a T4 is 7.5), trained with the Trainer's dynamic loss scaling (``fp16=True``), and fp32 on
  CPU / MPS. The choice and its reason are printed.
- 4-bit QLoRA (bitsandbytes nf4, double quantisation, compute in the chosen dtype) needs CUDA.

The chosen path is printed in one line, e.g. ``labkit: transformers + PEFT, fp32 (auto: cpu trains in fp32), cpu``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from labkit.config import Config, ConfigError, ModelConfig
from labkit.env import pick_device
from labkit.env import native_bf16 as _native_bf16
from labkit.train.lora import TrainableParams, apply_lora, count_trainable, resolve_target_modules

DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass
class LoadedModel:
    model: Any            # a PEFT model with a fresh adapter, in train mode
    tokenizer: Any
    backend: str          # "unsloth" or "transformers"
    dtype: str            # "float32" / "bfloat16" / "float16"
    device: str
    load_in_4bit: bool
    params: TrainableParams
    dtype_reason: str = ""

    def describe(self) -> str:
        backend = "Unsloth" if self.backend == "unsloth" else "transformers + PEFT"
        quant = ", 4-bit nf4 (QLoRA)" if self.load_in_4bit else ""
        why = f" ({self.dtype_reason})" if self.dtype_reason else ""
        return f"labkit: {backend}, {DTYPE_NAMES[self.dtype]}{why}{quant}, {self.device}"


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def choose_backend(model_cfg: ModelConfig, device: str) -> str:
    if model_cfg.backend == "transformers":
        return "transformers"
    if model_cfg.backend == "unsloth":
        if device != "cuda":
            raise ConfigError(f"model.backend=unsloth needs a CUDA GPU (device here: {device}); "
                              "use model.backend=auto or transformers")
        if not unsloth_available():
            raise ConfigError('model.backend=unsloth but Unsloth is not installed: pip install "labkit[gpu]", '
                              "or use model.backend=auto")
        return "unsloth"
    return "unsloth" if device == "cuda" and unsloth_available() else "transformers"


def choose_dtype(requested: str, device: str) -> tuple[str, str]:
    """The compute dtype name for ``model.dtype`` on ``device``, and the reason, e.g. ``("float16", "auto: Tesla T4
    has no native bf16 (compute capability 7.5 < 8.0), so fp16 with dynamic loss scaling")``."""
    import torch

    if requested != "auto":
        if device == "cpu" and requested == "float16":
            raise ConfigError("model.dtype=float16 cannot train on the CPU; use model.dtype=auto or float32")
        why = "model.dtype"
        if device == "cuda" and requested == "bfloat16" and not native_bf16():
            why += ", emulated on this GPU (slow): model.dtype=auto picks fp16 here"
        return requested, why
    if device != "cuda":
        return "float32", f"auto: {device} trains in fp32"
    major, minor = torch.cuda.get_device_capability()
    gpu = torch.cuda.get_device_name()
    if native_bf16():
        return "bfloat16", f"auto: {gpu} computes bf16 natively (compute capability {major}.{minor} >= 8.0)"
    return "float16", (f"auto: {gpu} has no native bf16 (compute capability {major}.{minor} < 8.0), so fp16 with "
                       "dynamic loss scaling")


def native_bf16() -> bool:
    """Does the current CUDA GPU compute bf16 in hardware (not through emulation)?"""
    import torch

    return _native_bf16(torch.cuda.get_device_capability())


def resolve_dtype(requested: str, device: str) -> str:
    """The compute dtype name for ``model.dtype`` on ``device`` (see :func:`choose_dtype` for the reason)."""
    return choose_dtype(requested, device)[0]


def check_4bit(model_cfg: ModelConfig, device: str) -> None:
    if not model_cfg.load_in_4bit:
        return
    if device != "cuda":
        raise ConfigError(f"model.load_in_4bit=true needs a CUDA GPU (bitsandbytes 4-bit); this run is on {device}. "
                          "Set model.load_in_4bit=false to train in full precision here.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError('model.load_in_4bit=true needs bitsandbytes: pip install "labkit[gpu]"')


def four_bit_config(dtype: str):
    """QLoRA's quantisation of the base weights: bitsandbytes nf4 with double quantisation, computing in ``dtype``.
    The export rebuilds the trained 4-bit model with it (export/qlora.py). Unsloth's ``load_in_4bit`` quantises a
    16-bit checkpoint the same way as far as we read its loader, but may load its own pre-quantised one instead."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=getattr(torch, dtype))


def load_for_training(cfg: Config, *, verbose: bool = True) -> LoadedModel:
    """The base model with a fresh LoRA adapter and its tokenizer, on the configured device."""
    device = pick_device(cfg.model.device)
    check_4bit(cfg.model, device)
    backend = choose_backend(cfg.model, device)
    dtype, why = choose_dtype(cfg.model.dtype, device)
    loader = _load_unsloth if backend == "unsloth" else _load_transformers
    model, tokenizer = loader(cfg, device, dtype)
    loaded = LoadedModel(model, tokenizer, backend, dtype, device, cfg.model.load_in_4bit, count_trainable(model),
                         why)
    if verbose:
        print(loaded.describe())
        print(f"labkit: {loaded.params}")
    return loaded


def load_training_tokenizer(cfg: Config):
    """The tokenizer, with a chat template guaranteed (``data.chat_template``) and a pad token."""
    from labkit.templates import ensure_chat_template
    from labkit.models import load_tokenizer

    tokenizer = load_tokenizer(cfg.model.name)
    ensure_chat_template(tokenizer, cfg.data.chat_template)
    return tokenizer


def _load_transformers(cfg: Config, device: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM

    from labkit.models import ModelNotAvailable, _load_error_hint, resolve

    path = resolve(cfg.model.name)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if cfg.model.load_in_4bit:
        kwargs["quantization_config"] = four_bit_config(dtype)
        # The current GPU: under `accelerate launch` labkit.distributed.setup has made it cuda:LOCAL_RANK.
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ModelNotAvailable(_load_error_hint(cfg.model.name, path, err)) from None
    if cfg.model.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.train.gradient_checkpointing)
    else:
        model = model.to(device)
    if cfg.train.gradient_checkpointing:
        # With a frozen base, the checkpointed blocks get no input that requires grad; this hook makes the
        # embeddings' output require it so the LoRA gradients flow through recomputed blocks.
        model.enable_input_require_grads()
    model.config.use_cache = False
    _seed_adapter(cfg.train.seed)
    model = apply_lora(model, cfg.lora)
    return model.train(), load_training_tokenizer(cfg)


def _seed_adapter(seed: int) -> None:
    """LoRA's A matrices are random: seed them so that a run repeats."""
    from labkit.env import seed_everything

    seed_everything(seed)


def _load_unsloth(cfg: Config, device: str, dtype: str):
    """Unsloth's loader and adapter (GPU only; exercised on a CUDA machine, not in the CPU test suite)."""
    import torch
    from unsloth import FastLanguageModel  # noqa: import only on this path (it patches transformers)

    from labkit.templates import ensure_chat_template
    from labkit.models import resolve

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=resolve(cfg.model.name), max_seq_length=cfg.data.max_seq_length,
        dtype=getattr(torch, dtype), load_in_4bit=cfg.model.load_in_4bit)
    targets = resolve_target_modules(cfg.lora.target_modules, model)
    if isinstance(targets, str):
        raise ConfigError("Unsloth needs explicit lora.target_modules names for this model (e.g. [q_proj, v_proj])")
    model = FastLanguageModel.get_peft_model(
        model, r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, target_modules=targets,
        bias="none", use_rslora=cfg.lora.use_rslora, random_state=cfg.train.seed,
        use_gradient_checkpointing="unsloth" if cfg.train.gradient_checkpointing else False,
        max_seq_length=cfg.data.max_seq_length,
        **({"use_dora": True} if cfg.lora.use_dora else {}))  # passed on to peft.LoraConfig via **kwargs
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer, cfg.data.chat_template)
    return model, tokenizer
