"""After QLoRA the export report gives the 4-bit-to-16-bit gap as its own number, beside an unchanged merge check.

bitsandbytes' 4-bit needs CUDA, so here the 4-bit trained model is a stand-in: the base with every linear weight
rounded to 4 bits (absmax per block of 64, 15 levels; nf4 uses other levels, the code path is the same)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from labkit.export import export_model, parity, qlora  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread_module")


def _round_to_4_bits(weight, block: int = 64):
    flat = weight.reshape(-1, block)
    scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 7
    return (torch.round(flat / scale).clamp(-7, 7) * scale).reshape(weight.shape)


def standin_4bit_trained(base_dir, adapter_dir, compute_dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, compute_dtype))
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name != "lm_head":  # bitsandbytes keeps the head too
                module.weight.copy_(_round_to_4_bits(module.weight))
    return peft.PeftModel.from_pretrained(model, adapter_dir).eval()


@pytest.fixture(scope="module")
def adapter(tiny_model_path, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                         task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    for name, param in wrapped.named_parameters():  # B starts at zero: make the adapter change something
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    folder = tmp_path_factory.mktemp("adapter")
    wrapped.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exports(tiny_model_path, adapter, tmp_path_factory):
    """The same adapter exported as a LoRA and as a QLoRA adapter (the 4-bit model a stand-in, and the warning
    threshold 0, so that the warning path runs too)."""
    out = tmp_path_factory.mktemp("exports")
    plain = export_model(tiny_model_path, adapter, out / "lora", formats=[], show_progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(qlora, "unavailable_reason", lambda: None)
        patch.setattr(qlora, "load_4bit_trained", standin_4bit_trained)
        patch.setitem(parity.PPL_TOLERANCE, qlora.GAP, 0.0)
        report = export_model(tiny_model_path, adapter, out / "qlora", formats=[], qlora_dtype="float32",
                              show_progress=False)
    return plain, report, out


def test_the_gap_is_its_own_number_and_the_merge_check_is_unchanged(exports):
    plain, report, out = exports
    assert qlora.GAP not in plain["merge"] and plain["warnings"] == []
    assert report["merge"]["parity"] == plain["merge"]["parity"], "the merge check must not move with QLoRA"
    gap = report["merge"][qlora.GAP]
    # any change at all: the 4-bit stand-in was used (a random tiny model moves its perplexity by ~0.04-0.1%)
    assert gap["perplexity_rel_diff"] > 0.0 and gap["ppl_tolerance"] == 0.0 and gap["held_out_tokens"] > 50
    assert gap["reference_perplexity"] != report["merge"]["parity"]["reference_perplexity"]  # 4-bit model is ref
    assert '"qlora_gap"' in (out / "qlora" / "export_report.json").read_text()
    assert qlora.gap_line(gap).startswith("QLoRA gap (16-bit base + adapter vs the 4-bit trained model): perplexity")


def test_an_unusual_gap_warns_without_failing_the_export(exports):
    _, report, out = exports
    assert report["passed"] and not report["merge"][qlora.GAP]["within_tolerance"]
    assert len(report["warnings"]) == 1 and "serve the adapter on the 4-bit base" in report["warnings"][0]
    assert not list((out / "qlora").glob("*.FAILED"))


def test_without_cuda_the_gap_is_reported_as_not_measured(tiny_model_path, adapter, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = qlora.as_trained_reference(tiny_model_path, adapter, None, "auto")
    assert qlora.measure_gap(reason, None, None) == {
        "skipped": "not measured: the 4-bit trained model needs a CUDA GPU (bitsandbytes nf4)"}
    assert qlora.gap_line({"skipped": reason}).endswith("needs a CUDA GPU (bitsandbytes nf4)")


@pytest.mark.parametrize("four_bit", [True, False])
def test_labkit_export_passes_the_runs_dtype_for_a_qlora_run(tmp_path, monkeypatch, four_bit):
    from labkit.config import load_config
    from labkit.export import stage
    from labkit.runs import Run

    seen = {}
    monkeypatch.setattr(stage, "export_model", lambda *args, **kwargs: seen.update(kwargs) or {"passed": True})
    config = load_config("smoke", {"model.load_in_4bit": four_bit, "model.dtype": "float16"})
    run = Run.open("q", config)
    (run.path("adapter")).mkdir()
    (run.path("adapter", "adapter_config.json")).write_text("{}")
    stage.run_export(config, run)
    assert seen["qlora_dtype"] == ("float16" if four_bit else None)
