"""Typed configuration for every stage, named presets, and ``key=value`` overrides.

A run is described by one :class:`Config` made of five stage sections (data, model, lora, train, eval).
Presets are commented YAML files shipped in ``labkit/presets/``; a preset may name a ``base`` preset
whose values it overrides. Every field carries its own documentation (``doc``) so that error messages,
the CLI and the README can explain it, and every section validates itself in ``__post_init__``.

This module is long on purpose: every setting of every stage is declared here once, each with its documentation and
check,
so that ``labkit presets --keys`` and the error messages have one source.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PRESET = "cpu-demo"


class ConfigError(ValueError):
    """A preset key or value is wrong; the message names it and says what is allowed."""


def doc(text: str, default: Any = dataclasses.MISSING, *, choices: tuple | None = None, factory=None):
    """A dataclass field that carries its documentation (and allowed values) in its metadata."""
    meta = {"doc": text, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _fail(section: str, name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{section}.{name}={value!r} is invalid: {allowed}")


def _check_choices(section: object) -> None:
    """Reject values outside a field's declared ``choices``."""
    for f in dataclasses.fields(section):
        choices = f.metadata.get("choices")
        value = getattr(section, f.name)
        if choices and value not in choices:
            _fail(_section_name(section), f.name, value, f"allowed values are {', '.join(map(str, choices))}")


def _section_name(section: object) -> str:
    return type(section).__name__.removesuffix("Config").lower()


def _positive(section: object, *names: str, allow_zero: bool = False) -> None:
    for name in names:
        value = getattr(section, name)
        if value is None:
            continue
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            _fail(_section_name(section), name, value, f"must be {bound}")


@dataclass
class DataConfig:
    """Where the training data comes from and how it is cleaned, split and rendered."""

    sources: list[str] = doc(
        "Datasets to mix. 'project:NAME' is a dataset shipped in data/NAME (general, function_calling, reading_qa, "
        "arithmetic); a path is a local json/jsonl/parquet/csv file; anything else is a Hugging Face hub id "
        "(e.g. mlabonne/FineTome-100k, needs network).",
        factory=lambda: ["project:general", "project:function_calling", "project:reading_qa", "project:arithmetic"],
    )
    schema: str = doc(
        "Row schema of the sources; 'auto' detects it from the columns.",
        "auto",
        choices=("auto", "sharegpt", "messages", "alpaca", "squad", "finance", "custom"),
    )
    column_map: dict = doc(
        "For schema=custom: maps 'messages' or 'system'/'user'/'assistant' to column names, and optionally "
        "'roles' to a dict of role-name mappings.",
        factory=dict,
    )
    hub_split: str = doc("Split to read from a hub dataset.", "train")
    limit: int | None = doc("Keep at most this many rows per source (None keeps all).", None)
    sample: str = doc("How 'limit' picks rows: the first N, or a seeded random N.", "first", choices=("first", "random"))
    min_score: float | None = doc("Drop rows whose quality 'score' column is below this (FineTome scores 0-5).", None)
    min_tokens: int | None = doc("Drop conversations shorter than this many tokens once rendered.", None)
    max_tokens: int | None = doc("Drop conversations longer than this many tokens once rendered (None: keep).", None)
    dedupe: bool = doc("Drop exact duplicate conversations.", True)
    invalid: str = doc("What to do with malformed rows: stop with an error, or drop them and report.", "fail",
                       choices=("fail", "drop"))
    val_fraction: float = doc("Share of the training rows held out for validation loss.", 0.05)
    val_rows: int | None = doc(
        "A fixed validation set: this many rows of each source, carved with seed 'val_seed' before 'limit' applies, "
        "so every data.limit and train.seed of an experiment validates on the same rows (replaces val_fraction; "
        "None: val_fraction of each run's own rows).", None)
    val_seed: int = doc("Seed of the fixed validation carve (val_rows); independent of train.seed.", 0)
    test_fraction: float = doc("Share held out as test for sources that ship no test split (hub data).", 0.05)
    max_seq_length: int = doc("Maximum tokens per training sequence; longer ones are truncated.", 512)
    chat_template: str = doc("'auto' uses the tokenizer's own chat template; or a named template "
                             "(chatml, llama3, gemma) for models that carry none.", "auto")
    packing: bool = doc("Pack several conversations into one sequence (TRL's packing).", False)

    def __post_init__(self) -> None:
        _check_choices(self)
        _positive(self, "limit", "min_tokens", "max_tokens", "max_seq_length", "val_rows")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                _fail("data", name, value, "must be a fraction in [0, 1)")
        if not self.sources:
            _fail("data", "sources", self.sources, "give at least one dataset")
        for source in self.sources:
            _check_source(source)


LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")


def project_data_dir() -> Path:
    """The project's datasets: the copy a wheel or git install ships inside the package (``labkit/_data``,
    written by setup.py's build step), else the repository's ``data/`` (a clone, ``pip install -e .``)."""
    package = Path(__file__).resolve().parent
    shipped = package / "_data"
    return shipped if shipped.is_dir() else package.parent / "data"


def _check_source(source: str) -> None:
    if source.startswith("project:"):
        name = source.split(":", 1)[1]
        if not (project_data_dir() / name / "train.jsonl").exists():
            available = sorted(p.name for p in project_data_dir().glob("*") if (p / "train.jsonl").exists())
            _fail("data", "sources", source, f"no dataset {name!r} in {project_data_dir()}; "
                                             f"available: {', '.join(available) or 'none'}")
    elif source.endswith(LOCAL_SUFFIXES) and not Path(source).expanduser().exists():
        _fail("data", "sources", source, "file not found; give an existing json/jsonl/parquet/csv path or a hub id")


@dataclass
class ModelConfig:
    """Which base model to load and how."""

    name: str = doc(
        "Registry name (smollm2-135m-instruct, gemma3-270m, tiny-random-llama) or a Hugging Face hub id.",
        "smollm2-135m-instruct",
    )
    backend: str = doc("'auto' uses Unsloth on CUDA when it is installed, else transformers + PEFT.", "auto",
                       choices=("auto", "unsloth", "transformers"))
    load_in_4bit: bool = doc("QLoRA: load the base weights in 4-bit nf4 (bitsandbytes, CUDA only).", False)
    dtype: str = doc("Compute dtype; 'auto' is bf16 where the GPU has it natively (compute capability >= 8.0), "
                     "fp16 with loss scaling on older GPUs (a T4), fp32 on CPU.",
                     "auto", choices=("auto", "float32", "bfloat16", "float16"))
    device: str = doc("'auto' picks CUDA, then Apple MPS, then CPU.", "auto", choices=("auto", "cuda", "mps", "cpu"))

    def __post_init__(self) -> None:
        _check_choices(self)
        if not self.name:
            _fail("model", "name", self.name, "give a registry name or hub id")


@dataclass
class LoraConfig:
    """The LoRA adapter."""

    r: int = doc("LoRA rank.", 16)
    alpha: int = doc("LoRA alpha (scale = alpha / r, or alpha / sqrt(r) with rsLoRA).", 32)
    dropout: float = doc("Dropout on the LoRA path.", 0.0)
    target_modules: str | list = doc(
        "Which layers get adapters: 'all-linear', 'attention' (q,k,v,o), 'mlp', or an explicit list of names.",
        "all-linear",
    )
    use_rslora: bool = doc("Rank-stabilised LoRA (scale alpha / sqrt(r)).", False)
    use_dora: bool = doc("Weight-decomposed LoRA (DoRA).", False)

    def __post_init__(self) -> None:
        _positive(self, "r", "alpha")
        if not 0 <= self.dropout < 1:
            _fail("lora", "dropout", self.dropout, "must be in [0, 1)")
        named = ("all-linear", "attention", "mlp")
        if isinstance(self.target_modules, str) and self.target_modules not in named:
            _fail("lora", "target_modules", self.target_modules, f"use one of {', '.join(named)} or a list")


TRACKERS = ("tensorboard", "wandb", "trackio", "mlflow")


@dataclass
class TrainConfig:
    """The supervised fine-tuning run."""

    epochs: float = doc("Passes over the training set (ignored when max_steps > 0).", 1.0)
    max_steps: int = doc("Stop after this many optimizer steps; 0 means use epochs.", 0)
    batch_size: int = doc("Sequences per device per step.", 8)
    grad_accum: int = doc("Gradient accumulation steps (effective batch = batch_size x grad_accum).", 1)
    lr: float = doc("Peak learning rate.", 2e-4)
    lr_scheduler: str = doc("Learning-rate schedule.", "cosine", choices=("linear", "cosine", "constant",
                                                                           "constant_with_warmup"))
    warmup_ratio: float = doc("Share of steps spent warming up the learning rate.", 0.05)
    weight_decay: float = doc("AdamW weight decay.", 0.0)
    max_grad_norm: float = doc("Gradient clipping norm.", 1.0)
    gradient_checkpointing: bool = doc("Recompute activations to save memory (slower; pays on GPUs).", False)
    eval_steps: int = doc("Compute validation loss every N steps (0: only at the end).", 0)
    save_steps: int = doc("Write a checkpoint every N steps (0: only at the end).", 0)
    save_total_limit: int = doc("Keep only the last K checkpoints.", 2)
    early_stopping_patience: int = doc("Stop after this many evaluations without improvement (0: off).", 0)
    logging_steps: int = doc("Log metrics every N steps.", 1)
    seed: int = doc("Seed for data order, dropout and LoRA initialisation.", 42)
    optim: str = doc("Optimizer name as transformers knows it.", "adamw_torch")
    report_to: list[str] = doc(
        "Where the training curves go (a list): tensorboard (labkit's own writer, run/tb/), wandb, trackio, mlflow "
        "(each needs its package; its usual environment variables apply, e.g. WANDB_PROJECT, MLFLOW_TRACKING_URI). "
        "labkit's tokens/s, memory and trained tokens go there too; [] keeps only run/logs/train_log.jsonl.",
        factory=lambda: ["tensorboard"])

    def __post_init__(self) -> None:
        _check_choices(self)
        for tracker in self.report_to:
            if tracker not in TRACKERS:
                _fail("train", "report_to", self.report_to, f"each entry must be one of {', '.join(TRACKERS)}")
        _positive(self, "epochs", "batch_size", "grad_accum", "lr", "logging_steps", "save_total_limit")
        _positive(self, "max_steps", "eval_steps", "save_steps", "early_stopping_patience", "warmup_ratio",
                  "weight_decay", "max_grad_norm", allow_zero=True)
        if self.warmup_ratio >= 1:
            _fail("train", "warmup_ratio", self.warmup_ratio, "must be in [0, 1)")


# Suites labkit serves (hub ids, prompts, conversions: labkit/eval/suites/, which checks it serves exactly these).
EVAL_SUITES = ("demo", "arc_challenge", "arc_easy", "hellaswag", "piqa", "openbookqa", "siqa", "mmlu", "squad")
CUSTOM_SUITE = "custom:"


@dataclass
class EvalConfig:
    """How models are evaluated."""

    suite: list[str] = doc(
        "Suites, in order: demo (the project's held-out data per category); hub benchmarks arc_challenge, arc_easy, "
        "hellaswag, piqa, openbookqa, siqa, mmlu (multiple choice, lm-evaluation-harness 0.4.13's data and prompts); "
        "squad (SQuAD v1.1 validation, exact match / F1); custom:PATH (a local {query, choices, gold} JSONL).",
        factory=lambda: ["demo"])
    limit: int | None = doc("Evaluate a seeded random subset of this many items per category and suite (None: all).",
                            None)
    limits: dict[str, int] = doc("Per-suite limits replacing 'limit', e.g. {arc_challenge: 300}.", factory=dict)
    batch_size: int = doc("Prompts per generation / scoring batch.", 16)
    max_new_tokens: int = doc("Tokens generated per answer.", 96)
    bootstrap: int = doc("Bootstrap resamples for the 95% intervals.", 1000)
    judge_model: str | None = doc("Model used as LLM judge (None: skip the judge).", None)
    seed: int = doc("Seed for subset choice and the bootstrap.", 0)

    def __post_init__(self) -> None:
        _positive(self, "limit", "batch_size", "max_new_tokens", "bootstrap")
        for name in self.suite if self.suite else [None]:
            if name is None or not (name in EVAL_SUITES or (name.startswith(CUSTOM_SUITE) and name[7:].strip())):
                close = difflib.get_close_matches(str(name), EVAL_SUITES, n=1)
                _fail("eval", "suite", name, ("did you mean " + close[0] + "? " if close else "") + "known suites are "
                      f"{', '.join(EVAL_SUITES)}, or custom:PATH for a local multiple-choice file")
        if len(set(self.suite)) != len(self.suite):
            _fail("eval", "suite", self.suite, "a suite is listed twice")
        for name, value in self.limits.items():
            if name not in self.suite or isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail("eval", "limits", self.limits, f"give positive integer limits for suites of eval.suite "
                                                     f"({', '.join(self.suite)})")

    def limit_for(self, suite: str) -> int | None:
        """The item limit of one suite: its entry in ``limits``, else ``limit``."""
        return self.limits.get(suite, self.limit)


SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "lora": LoraConfig, "train": TrainConfig, "eval": EvalConfig,
}


@dataclass
class Config:
    """Everything a run needs. ``preset`` records where the values came from."""

    preset: str = DEFAULT_PRESET
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "Config":
        """Build a config from a nested dict (e.g. a run's config.json), validating every value."""
        values = {k: v for k, v in raw.items() if k not in SECTIONS}
        unknown = set(values) - {"preset", "description"}
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {sorted(unknown)}: allowed sections are {', '.join(SECTIONS)}")
        sections = {name: _build_section(name, raw.get(name) or {}) for name in SECTIONS}
        return cls(**values, **sections)


def _build_section(name: str, values: dict) -> Any:
    cls = SECTIONS[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(_unknown_key_message(f"{name}.{key}"))
    hints = typing.get_type_hints(cls)
    coerced = {key: _coerce(f"{name}.{key}", value, hints[key]) for key, value in values.items()}
    return cls(**coerced)


def all_keys() -> list[str]:
    """Every settable key, as ``section.field``."""
    return [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def field_doc(key: str) -> str:
    section, name = key.split(".", 1)
    return next(f.metadata["doc"] for f in dataclasses.fields(SECTIONS[section]) if f.name == name)


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, all_keys(), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; see `labkit presets --keys` for all keys"
    return f"unknown setting {key!r}{hint}"


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Turn a YAML / command-line value into the field's type, or fail naming the key."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "null", "~"):
            value = None
        elif text.startswith(("[", "{")):
            value = yaml.safe_load(text)
    if value is None:
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
            return None
        raise ConfigError(f"{key} cannot be empty")
    for candidate in _candidate_types(hint):
        converted = _convert(value, candidate)
        if converted is not _NO:
            return converted
    raise ConfigError(f"{key}={value!r} is invalid: expected {_type_name(hint)}")


_NO = object()


def _candidate_types(hint: Any) -> list:
    """The alternatives of an Optional / union hint (``int | None`` -> [int]); other hints stand alone."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _convert(value: Any, target: Any) -> Any:
    origin = typing.get_origin(target) or target
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        return _NO
    if origin in (int, float):
        if isinstance(value, bool):
            return _NO
        try:
            number = float(value)
        except (TypeError, ValueError):
            return _NO
        if origin is int:
            return int(number) if number.is_integer() else _NO
        return number
    if origin is str:
        return value if isinstance(value, str) else _NO
    if origin is list:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return list(value) if isinstance(value, (list, tuple)) else _NO
    if origin is dict:
        return dict(value) if isinstance(value, dict) else _NO
    return _NO


def _type_name(hint: Any) -> str:
    names = []
    for candidate in _candidate_types(hint):
        origin = typing.get_origin(candidate) or candidate
        names.append(getattr(origin, "__name__", str(origin)))
    return " or ".join(names)


# ---------------------------------------------------------------- presets

def preset_names() -> list[str]:
    folder = resources.files("labkit") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_preset(name: str) -> dict:
    """The raw nested dict of a preset, with its ``base`` chain merged in."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}: available presets are {', '.join(preset_names())}")
    text = (resources.files("labkit") / "presets" / f"{name}.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    base = raw.pop("base", None)
    merged = _merge(read_preset(base), raw) if base else raw
    merged["preset"] = name
    return merged


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str) -> tuple[str, str]:
    """Split ``key=value``; the key may be ``section.field`` or an unambiguous bare field name."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. lora.r=8 or lr=1e-4)")
    key, value = text.split("=", 1)
    return resolve_key(key.strip()), value


def resolve_key(key: str) -> str:
    if key in all_keys():
        return key
    matches = [k for k in all_keys() if k.split(".", 1)[1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"setting {key!r} is ambiguous: write one of {', '.join(matches)}")
    raise ConfigError(_unknown_key_message(key))


def load_config(preset: str = DEFAULT_PRESET, overrides: list[str] | dict | None = None) -> Config:
    """Resolve a preset plus ``key=value`` overrides into a validated :class:`Config`."""
    raw = read_preset(preset)
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    for key, value in items:
        section, name = resolve_key(key).split(".", 1)
        raw.setdefault(section, {})[name] = value
    return Config.from_dict(raw)


def diff_configs(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested config dicts (``key: old -> new``)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            lines += diff_configs(a, b, f"{prefix}{key}.")
        elif a != b:
            lines.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return lines
