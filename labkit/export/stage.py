"""The export stage (notebook 05 / ``labkit export``): adapter -> merged 16-bit model -> GGUF files, each checked.

Layout of ``run/export/``::

    adapter/                 the LoRA adapter alone (small; load it on top of the base model)
    merged/                  base + adapter as a 16-bit safetensors checkpoint (transformers, vLLM, TGI)
    model-f16.gguf           llama.cpp / Ollama / LM Studio files
    model-q8_0.gguf
    Modelfile, Modelfile.<format>   Ollama: `ollama create NAME -f Modelfile` (labkit.export.modelfile)
    README.md (and in adapter/, merged/)   the model card (labkit.export.card)
    export_report.json       every parity check; a file that failed also gets a ``<file>.FAILED`` note

The chain of checks proves that what was written computes what was trained: the merged model against base +
adapter (PEFT, unmerged), then every GGUF, read back by transformers' GGUF loader (and by llama.cpp when
``llama-cpp-python`` is installed), against the merged model. After QLoRA the report also gives the gap between
the 16-bit base + adapter and the 4-bit model that was trained, as its own number (``export/qlora.py`` says why).
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path

from labkit.export import parity, qlora, to_gguf
from labkit.export.card import write_cards
from labkit.export.errors import ExportError, ParityFailed
from labkit.export.merge import DEFAULT_SHARD_BYTES, merge_adapter
from labkit.export.modelfile import write_modelfiles
from labkit.export.resources import check_resources
from labkit.runs import MissingInput, atomic_write_json, atomic_write_text

REPORT = "export_report.json"
DEFAULT_FORMATS = ("f16", "q8_0")


def _say(message: str, show: bool) -> None:
    if show:
        print(f"labkit export: {message}", flush=True)


def export_adapter(adapter, target: str | Path) -> Path:
    """Save the adapter alone: ``adapter`` is a PEFT model (saved with ``save_pretrained``) or a folder (copied)."""
    target = Path(target)
    if hasattr(adapter, "save_pretrained") and hasattr(adapter, "peft_config"):
        adapter.save_pretrained(target)
        return target
    source = Path(adapter)
    if not (source / "adapter_config.json").exists():
        raise ExportError(f"{source} is not a PEFT adapter folder (no adapter_config.json): train first "
                          f"(notebook 02 / `labkit train`)")
    if source.resolve() != target.resolve():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoint-*", "*.partial"))
    return target


# ------------------------------------------------------------------ models as logits functions

def _load_adapter_model(base_dir: Path, adapter_dir: Path, dtype: str):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    return PeftModel.from_pretrained(base, adapter_dir).eval()


def _load_hf(model_dir: Path, dtype: str, gguf_file: str | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype), **extra).eval()


def _load_llama_cpp(path: Path):
    """llama.cpp's reader of ``path``, on its plain CPU kernels.

    On CPUs that report AMX, llama.cpp moves quantised weights to its AMX kernels ("extra buffer types"); with
    llama-cpp-python 0.3.36 compiled on this project's test machine (a VM reporting amx_int8) every forward pass
    then died with a segmentation fault in ggml_backend_amx_mul_mat. Llama() has no argument for it, so its
    default model parameters are wrapped, only while this model loads, to turn them off.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=1024, logits_all=True, verbose=False, seed=0)
    finally:
        bindings.llama_model_default_params = defaults


# ------------------------------------------------------------------ checks on the GGUF file itself

def gguf_file_checks(path: Path, tokenizer) -> dict:
    """The chat template, end-of-turn token and vocabulary must travel inside the GGUF."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key):
        found = reader.fields.get(key)
        return None if found is None else found.contents()

    template = value("tokenizer.chat_template")
    tokens = value("tokenizer.ggml.tokens") or []
    expected = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    checks = {
        "chat_template_present": bool(template),
        "chat_template_matches": template == tokenizer.chat_template,
        "eos_token_matches": value("tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id,
        "vocabulary_matches": list(tokens[:len(expected)]) == expected,
    }
    checks["passed"] = all(checks.values())
    return checks


# ------------------------------------------------------------------ the export

def _reference_for_merged(base_dir, adapter_dir, merged_dir, inputs, dtype, decode, show,
                          qlora_dtype: str | None = None) -> tuple[dict, object, dict | None]:
    """Merged vs base + adapter, then the merged model's own reference outputs for the GGUF checks; after QLoRA
    (``qlora_dtype``: its model.dtype, ``auto`` as in training) also base + adapter vs the 4-bit trained model."""
    as_trained = None
    if qlora_dtype:
        if qlora.unavailable_reason() is None:
            _say("computing the 4-bit trained model's outputs (the model as QLoRA trained it)", show)
        as_trained = qlora.as_trained_reference(base_dir, adapter_dir, inputs, qlora_dtype, decode)
    _say("computing base + adapter outputs (the trained model)", show)
    trained = _load_adapter_model(base_dir, adapter_dir, dtype)
    trained_ref = parity.reference_run(parity.hf_logits(trained), inputs, decode, parity.hf_greedy(trained))
    gap = qlora.measure_gap(as_trained, parity.hf_logits(trained), inputs) if qlora_dtype else None
    if gap is not None:
        _say(qlora.gap_line(gap), show)
    del trained
    gc.collect()
    _say("checking the merged model against it", show)
    merged = _load_hf(merged_dir, dtype)
    result = parity.compare(trained_ref, parity.hf_logits(merged), inputs,
                            ppl_tolerance=parity.PPL_TOLERANCE["merged"], tie_margin=parity.TIE_MARGIN["merged"])
    result["reference_continuations"] = trained_ref.texts
    _say("merged vs base + adapter: " + parity.summary_line(result), show)
    merged_ref = parity.reference_run(parity.hf_logits(merged), inputs, decode, parity.hf_greedy(merged))
    del merged
    gc.collect()
    return result, merged_ref, gap


def _check_gguf(path: Path, outtype: str, reference, inputs, tokenizer, dtype: str, show: bool) -> dict:
    checks = {"file": gguf_file_checks(path, tokenizer)}
    tolerance = {"ppl_tolerance": parity.PPL_TOLERANCE[outtype], "tie_margin": parity.TIE_MARGIN[outtype]}
    _say(f"reading {path.name} back with transformers' GGUF loader", show)
    model = _load_hf(path.parent, dtype, gguf_file=path.name)
    checks["transformers"] = parity.compare(reference, parity.hf_logits(model), inputs, **tolerance)
    _say(f"{path.name} (transformers) vs merged: " + parity.summary_line(checks["transformers"]), show)
    del model
    gc.collect()
    if to_gguf.llama_cpp_available():
        _say(f"reading {path.name} back with llama.cpp", show)
        llm = _load_llama_cpp(path)
        checks["llama_cpp"] = parity.compare(reference, parity.llama_cpp_logits(llm), inputs, **tolerance)
        _say(f"{path.name} (llama.cpp) vs merged: " + parity.summary_line(checks["llama_cpp"]), show)
        del llm
        gc.collect()
    else:
        checks["llama_cpp"] = {"skipped": f"not read back by llama.cpp: the check {to_gguf.LLAMA_CPP_HINT}"}
        _say(checks["llama_cpp"]["skipped"], show)
    checks["passed"] = all(c.get("passed", True) for c in checks.values() if isinstance(c, dict))
    return checks


def verify_gguf(gguf_path: str | Path, merged_dir: str | Path, outtype: str, *, held_out: list | None = None,
                max_new_tokens: int = 16, dtype: str = "float32", show_progress: bool = False) -> dict:
    """Check an existing GGUF file against the merged model it was made from (the same checks as the export).

    Raises :class:`ParityFailed` and writes ``<file>.FAILED`` beside it when the file does not compute what the
    merged model computes.
    """
    from transformers import AutoTokenizer

    gguf_path, merged_dir = Path(gguf_path), Path(merged_dir)
    outtype = to_gguf.check_format(outtype, "outtype")
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    inputs = parity.build_inputs(tokenizer, held_out, max_new_tokens=max_new_tokens)
    merged = _load_hf(merged_dir, dtype)
    reference = parity.reference_run(parity.hf_logits(merged), inputs, tokenizer.decode, parity.hf_greedy(merged))
    del merged
    gc.collect()
    checks = _check_gguf(gguf_path, outtype, reference, inputs, tokenizer, dtype, show_progress)
    if not checks["passed"]:
        reason = _failure_reason(checks)
        _mark_failed(gguf_path, reason)
        raise ParityFailed(f"{gguf_path.name} does not compute what {merged_dir} computes ({reason}); the file is "
                           f"kept, marked .FAILED")
    return checks


def _mark_failed(path: Path, reason: str) -> None:
    atomic_write_text(path.with_name(path.name + ".FAILED"), f"parity check failed: {reason}\n"
                      f"See {REPORT} beside this file. Do not use {path.name}.\n")


def _failure_reason(checks: dict) -> str:
    reasons = []
    for runtime, result in checks.items():
        if isinstance(result, dict) and result.get("passed") is False:
            detail = parity.failure_summary(result) if "greedy_mismatches" in result else \
                ", ".join(k for k, v in result.items() if v is False)
            reasons.append(f"{runtime}: {detail}")
    return "; ".join(reasons)


def export_model(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, *,
                 formats: tuple[str, ...] | list[str] = DEFAULT_FORMATS, dtype: str = "bfloat16",
                 held_out: list | None = None, max_new_tokens: int = 16,
                 max_shard_bytes: int = DEFAULT_SHARD_BYTES, show_progress: bool = True,
                 qlora_dtype: str | None = None) -> dict:
    """Export ``base + adapter`` into ``out_dir`` and check every output; returns (and saves) the report.

    ``qlora_dtype``: for an adapter trained by QLoRA, the run's model.dtype (``auto`` as in training); the report gets
    ``merge.qlora_gap`` (the 4-bit-to-16-bit gap, see ``labkit.export.qlora``) and, when it is unusually large,
    a warning in ``warnings``.

    Raises :class:`ParityFailed` after saving the report when any check fails; the files stay, each failed one
    with a ``.FAILED`` note beside it.
    """
    from transformers import AutoTokenizer

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    formats = [to_gguf.check_format(f, "formats") for f in ([formats] if isinstance(formats, str) else formats)]
    runnable = [f for f in formats if f not in to_gguf.QUANTISED_FORMATS or to_gguf.llama_cpp_available()]
    report: dict = {"base": str(base_dir), "adapter": str(adapter_dir), "started": time.time(), "outputs": {},
                    "skipped": {f: to_gguf.LLAMA_CPP_HINT for f in formats if f not in runnable}}
    for skipped in report["skipped"]:
        _say(f"skipping GGUF {skipped}: it {to_gguf.LLAMA_CPP_HINT}", show_progress)
    report["resources"] = check_resources(base_dir, out_dir, runnable, max_shard_bytes)
    parity_dtype = report["resources"]["parity_dtype"]
    out_dir.mkdir(parents=True, exist_ok=True)
    export_adapter(adapter_dir, out_dir / "adapter")
    _say("merging the adapter into the base weights (streaming)", show_progress)
    report["merge"] = merge_adapter(base_dir, adapter_dir, out_dir / "merged", dtype=dtype,
                                    max_shard_bytes=max_shard_bytes, progress=show_progress)
    tokenizer = AutoTokenizer.from_pretrained(out_dir / "merged")
    inputs = parity.build_inputs(tokenizer, held_out, max_new_tokens=max_new_tokens)
    report["merge"]["parity"], reference, gap = _reference_for_merged(
        base_dir, adapter_dir, out_dir / "merged", inputs, parity_dtype, tokenizer.decode, show_progress, qlora_dtype)
    if gap is not None:
        report["merge"][qlora.GAP] = gap
    report["warnings"] = [gap["warning"]] if gap and "warning" in gap else []
    for warning in report["warnings"]:
        _say(f"WARNING: {warning}", show_progress)
    report["reference_continuations"] = reference.texts
    if report["merge"]["parity"]["passed"]:
        for outtype in runnable:
            path = out_dir / f"model-{outtype}.gguf"
            path.with_name(path.name + ".FAILED").unlink(missing_ok=True)
            _say(f"writing {path.name}", show_progress)
            entry = to_gguf.convert(out_dir / "merged", path, outtype, show_progress)
            entry["checks"] = _check_gguf(path, outtype, reference, inputs, tokenizer, parity_dtype, show_progress)
            entry["passed"] = entry["checks"]["passed"]
            report["outputs"][outtype] = entry
    passed = [Path(e["file"]) for e in report["outputs"].values() if e["passed"]]
    if passed:
        report["modelfile"] = write_modelfiles(passed, tokenizer)
        _say(f"Ollama Modelfile: {report['modelfile'].get('skipped') or report['modelfile']['family']}",
             show_progress)
    return _finish(report, out_dir)


def _finish(report: dict, out_dir: Path) -> dict:
    failures = []
    if not report["merge"]["parity"]["passed"]:
        reason = "merged model: " + parity.failure_summary(report["merge"]["parity"])
        _mark_failed(out_dir / "merged", reason)
        failures.append(reason)
    for outtype, entry in report["outputs"].items():
        if not entry["passed"]:
            reason = _failure_reason(entry["checks"])
            _mark_failed(Path(entry["file"]), reason)
            failures.append(f"{Path(entry['file']).name}: {reason}")
    report["passed"] = not failures
    report["failures"] = failures
    report["seconds"] = round(time.time() - report.pop("started"), 1)
    atomic_write_json(out_dir / REPORT, report)
    if failures:
        raise ParityFailed(f"export parity check failed ({' | '.join(failures)}). The files are kept in {out_dir}, "
                           f"marked .FAILED; details in {out_dir / REPORT}")
    return report


# ------------------------------------------------------------------ the stage

def _held_out(run) -> list | None:
    from labkit.data.prepare import PreparedDataMissing, load_prepared

    for split in ("test", "validation"):
        try:
            rows = load_prepared(run, split)
        except PreparedDataMissing:
            return None
        if rows:
            return [row["messages"] for row in rows]
    return None


def run_export(cfg, run) -> dict:
    """``labkit export``: merge ``run/adapter`` into ``cfg.model.name``, write f16 and q8_0 GGUF (q4_k_m too
    when llama-cpp-python is installed) into ``run/export/``, check them all, and record ``run/export.json``."""
    from labkit.models import resolve

    adapter = run.path("adapter")
    if not (adapter / "adapter_config.json").exists():
        raise MissingInput(f"run {run.name!r} has no trained adapter ({adapter} is missing): run notebook 02 "
                           f"or `labkit train --run {run.name}` first")
    formats = [*DEFAULT_FORMATS, "q4_k_m"]  # q4_k_m is skipped, and said so, without llama-cpp-python
    try:
        report = export_model(resolve(cfg.model.name), adapter, run.path("export"), formats=formats,
                              held_out=_held_out(run), qlora_dtype=cfg.model.dtype if cfg.model.load_in_4bit else None)
    except ParityFailed:
        run.record("export", {**_saved_report(run), "passed": False})
        raise
    report["model_cards"] = write_cards(run, run.path("export"))
    run.record("export", report)
    return report


def _saved_report(run) -> dict:
    from labkit.runs import read_json

    path = run.path("export", REPORT)
    return read_json(path) if path.exists() else {}
