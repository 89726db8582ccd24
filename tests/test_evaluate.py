"""The evaluation stage on the tiny random model and a small fabricated prepared run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from labkit.config import load_config
from labkit.eval import items as eval_items
from labkit.eval.items import EvalDataError, by_category, gold_call, seeded_subset
from labkit.runs import Run, read_json, read_jsonl, write_jsonl

CATEGORIES = ("arithmetic", "function_calling", "general", "reading_qa")
LIMIT = 3
NOT_A_FILE = "fabricated/hub-dataset"  # a hub id: valid in a config, never read by these tests
MC_ROWS = [  # five ARC-style rows in the evalsets format {query, choices, gold}
    {"query": "Question: Which gas do plants take in to make food?", "choices": ["oxygen", "carbon dioxide",
     "helium", "neon"], "gold": 1},
    {"query": "Question: What is frozen water called?", "choices": ["steam", "ice", "sand"], "gold": 1},
    {"query": "Question: Which planet is closest to the Sun?", "choices": ["Mercury", "Mars", "Jupiter",
     "Saturn"], "gold": 0},
    {"query": "Question: What do bees make?", "choices": ["milk", "silk", "honey", "wool"], "gold": 2},
    {"query": "Question: Which tool measures temperature?", "choices": ["ruler", "scale", "clock",
     "thermometer"], "gold": 3},
]


def _row(category: str, i: int, user: str, answer: str, reference: dict, system: str | None = None) -> dict:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"id": f"{category}-test-{i:05d}", "category": category, "source": f"labkit/{category}",
            "messages": messages, "reference": reference}


def fabricated_rows(n: int = 5) -> list[dict]:
    rows = []
    for i in range(n):
        call = {"name": "get_weather", "arguments": {"city": f"Oslo{i}"}}
        rows += [
            _row("function_calling", i, f"Weather in Oslo{i}?", json.dumps(call), call, system="Tools: get_weather"),
            _row("reading_qa", i, f"Context: Ann has {i} cats.\nQuestion: How many cats?", str(i),
                 {"answers": [str(i)]}),
            _row("arithmetic", i, f"What is {i} + 2?", f"{i} + 2 = {i + 2}", {"answer": i + 2}),
            _row("general", i, f"Say something about the number {i}.", f"The number {i} is small and friendly.", {}),
        ]
    return rows


pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def mc_file(tmp_path_factory):
    rows = [dict(row, id=f"mc-{i}") for i, row in enumerate(MC_ROWS)]
    path = tmp_path_factory.mktemp("mc") / "test.jsonl"
    write_jsonl(path, rows)
    return path


def make_run(root, name: str, adapter: bool, judge: str | None = None):
    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE], "eval.limit": LIMIT, "eval.max_new_tokens": 8,
                                "eval.batch_size": 4, "eval.bootstrap": 200, "eval.judge_model": judge})
    run = Run.open(name, cfg, root=root)
    write_jsonl(run.path("data", "test.jsonl"), fabricated_rows())
    if adapter:
        save_random_adapter(run.path("adapter"))
    return cfg, run


def save_random_adapter(folder) -> None:
    """A LoRA adapter with random (non-zero) weights, so the tuned model really differs from the base."""
    import peft
    import torch

    from labkit.models import load_causal_lm, load_tokenizer

    torch.manual_seed(0)
    config = peft.LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                             task_type="CAUSAL_LM")
    peft.get_peft_model(load_causal_lm("tiny-random-llama"), config).save_pretrained(folder)
    load_tokenizer("tiny-random-llama").save_pretrained(folder)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, mc_file, tiny_model_path):
    from labkit.eval.evaluate import run_evaluation

    patch = pytest.MonkeyPatch()
    patch.setattr(eval_items, "mc_path", lambda: mc_file)
    try:
        cfg, run = make_run(tmp_path_factory.mktemp("runs"), "with-adapter", adapter=True, judge="tiny-random-llama")
        summary = run_evaluation(cfg, run, progress=False)
    finally:
        patch.undo()
    return cfg, run, summary


# ----------------------------------------------------------------- the stage end to end

def test_records_and_summary_are_written_for_both_models(evaluated):
    _, run, summary = evaluated
    assert read_json(run.path("eval", "summary.json")) == json.loads(json.dumps(summary))
    for tag in ("base", "tuned"):
        for category in (*CATEGORIES, "mc_knowledge"):
            records = read_jsonl(run.path("eval", tag, f"{category}.jsonl"))
            assert len(records) == LIMIT, (tag, category)
            for record in records:
                assert {"id", "category", "prompt", "prediction", "reference"} <= set(record)
                assert record["category"] == category
    base = read_jsonl(run.path("eval", "base", "function_calling.jsonl"))
    assert {"name_accuracy", "call_accuracy", "parse_error"} <= set(base[0])
    assert base[0]["reference"] == {"name": "get_weather", "arguments": {"city": base[0]["prompt"][11:-1]}}
    general = read_jsonl(run.path("eval", "base", "general.jsonl"))
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "nll", "n_tokens"} <= set(general[0])


def test_summary_has_intervals_for_every_metric(evaluated):
    _, _, summary = evaluated
    for tag in ("base", "tuned"):
        results = summary["results"][tag]
        assert set(results) == {*CATEGORIES, "mc_knowledge", "judge"}
        for category, result in results.items():
            assert result["n"] == LIMIT
            if category == "judge":  # a random judge never writes a parseable grade: no mean, failures counted
                parsed = result["metrics"].get("judge_score", {}).get("n", 0)
                assert summary["judge"]["parse_failures"][tag] == LIMIT - parsed
                continue
            assert result["metrics"], category
            for name, stats in result["metrics"].items():
                assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"], (tag, category, name)
    assert set(summary["results"]["base"]["general"]["metrics"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum",
                                                                      "perplexity"}
    assert set(summary["results"]["base"]["mc_knowledge"]["metrics"]) == {"acc", "acc_norm"}


def test_tuned_model_is_the_adapter_and_paired_comparison_is_computed(evaluated):
    _, run, summary = evaluated
    base = read_jsonl(run.path("eval", "base", "general.jsonl"))
    tuned = read_jsonl(run.path("eval", "tuned", "general.jsonl"))
    assert [r["id"] for r in base] == [r["id"] for r in tuned]
    assert [r["n_tokens"] for r in base] == [r["n_tokens"] for r in tuned]
    assert any(not math.isclose(a["nll"], b["nll"]) for a, b in zip(base, tuned)), "adapter was not applied"
    paired = summary["comparison"]["general"]["perplexity"]
    mean_diff = sum(b["nll"] / b["n_tokens"] - a["nll"] / a["n_tokens"] for a, b in zip(base, tuned)) / LIMIT
    assert paired["mean_diff"] == pytest.approx(mean_diff)
    assert 0 < paired["p_value"] <= 1 and paired["outcome"] in ("better", "worse", "unclear")
    assert {*CATEGORIES, "mc_knowledge"} <= set(summary["comparison"])
    assert "mcnemar" in summary["comparison"]["function_calling"]["call_accuracy"]
    assert summary["models"]["tuned"]["adapter"] == str(run.path("adapter"))


def test_the_judge_grades_both_models_and_a_tiny_judge_is_called_untrustworthy(evaluated):
    from labkit.eval.evaluate import verdict

    _, run, summary = evaluated
    assert summary["judge"]["model"] == "tiny-random-llama" and summary["judge"]["params"] < 1e9
    for tag in ("base", "tuned"):
        judged = read_jsonl(run.path("eval", tag, "judge.jsonl"))
        assert [r["id"] for r in judged] == [r["id"] for r in read_jsonl(run.path("eval", tag, "general.jsonl"))]
        assert summary["judge"]["parse_failures"][tag] == sum(r["judge_score"] is None for r in judged)
    assert "too small to be trusted" in verdict(summary)


def test_perplexity_counts_only_assistant_tokens(evaluated, tiny_model, smol_tokenizer):
    """Same numbers as transformers' own loss with the non-assistant labels set to -100."""
    import torch

    from labkit.data.render import tokenize_conversation
    from labkit.eval.perplexity import conversation_nll

    conversations = [row["messages"] for row in fabricated_rows(2) if row["category"] == "general"]
    got = conversation_nll(tiny_model, smol_tokenizer, conversations, batch_size=2)
    for conversation, result in zip(conversations, got):
        encoded = tokenize_conversation(smol_tokenizer, conversation)
        ids = torch.tensor([encoded["input_ids"]])
        labels = torch.where(torch.tensor([encoded["assistant_masks"]]) == 1, ids, -100)
        with torch.no_grad():
            loss = tiny_model(input_ids=ids, labels=labels).loss
        assert result["n_tokens"] == sum(encoded["assistant_masks"][1:])
        assert result["nll"] / result["n_tokens"] == pytest.approx(float(loss), rel=1e-4)


def test_without_adapter_only_the_base_model_is_evaluated_and_the_verdict_says_so(tmp_path, monkeypatch, mc_file):
    from labkit.eval.evaluate import run_evaluation, verdict

    monkeypatch.setattr(eval_items, "mc_path", lambda: tmp_path / "absent.jsonl")
    cfg, run = make_run(tmp_path, "no-adapter", adapter=False)
    summary = run_evaluation(cfg, run, progress=False)
    assert set(summary["results"]) == {"base"} and summary["comparison"] == {}
    assert not run.path("eval", "tuned").exists()
    assert any("no adapter" in note for note in summary["notes"])
    assert any("multiple-choice" in note for note in summary["notes"])
    text = verdict(summary)
    assert text.startswith("Only the base model was evaluated")
    assert "No LLM judge was used" in text


# ----------------------------------------------------------------- subsets and gold answers

def test_subset_is_seeded_deterministic_and_kept_in_file_order():
    rows = [{"id": i, "category": "a" if i % 2 else "b"} for i in range(40)]
    first = seeded_subset(rows, 10, seed=3, key="a")
    assert first == seeded_subset(rows, 10, seed=3, key="a")
    assert first != seeded_subset(rows, 10, seed=4, key="a")
    assert [r["id"] for r in first] == sorted(r["id"] for r in first)
    assert seeded_subset(rows, None, seed=3) == rows and seeded_subset(rows, 99, seed=3) == rows
    groups = by_category(rows, 5, seed=0)
    assert {k: len(v) for k, v in groups.items()} == {"a": 5, "b": 5}
    assert all(r["category"] == k for k, v in groups.items() for r in v)


def test_gold_call_falls_back_to_the_answer_and_names_the_row_when_it_cannot():
    row = _row("function_calling", 7, "hi", '{"name": "f", "arguments": {"x": 1}}', {})
    assert gold_call(row) == {"name": "f", "arguments": {"x": 1}}
    with pytest.raises(EvalDataError, match="function_calling-test-00007"):
        gold_call(_row("function_calling", 7, "hi", "not a call", {}))


# ----------------------------------------------------------------- verdicts on fabricated summaries

def _records(category: str, scores: list[float], metric: str) -> list[dict]:
    return [{"id": f"{category}-{i}", "category": category, "prompt": "p", "prediction": "x", "reference": "y",
             metric: s} for i, s in enumerate(scores)]


def fabricated_summary(task_base, task_tuned, mc_base, mc_tuned, judge=None) -> dict:
    from labkit.eval.evaluate import build_summary

    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE]})
    records = {tag: {"arithmetic": _records("arithmetic", task, "accuracy"),
                     "mc_knowledge": _records("mc_knowledge", mc, "acc_norm")}
               for tag, task, mc in (("base", task_base, mc_base), ("tuned", task_tuned, mc_tuned))}
    summary = build_summary(records, cfg, Run("fab", Path("unused")), [], {})
    if judge:
        summary["judge"] = judge
    return summary


def test_verdict_helped():
    from labkit.eval.evaluate import verdict

    text = verdict(fabricated_summary([0.0] * 30 + [1.0] * 10, [1.0] * 36 + [0.0] * 4, [1.0, 0.0] * 20,
                                      [1.0, 0.0] * 20))
    assert text.startswith("Fine-tuning helped on 1 of 1 tasks (arithmetic)")
    assert "+65.0 pts" in text and "do not overlap" in text and "paired p < 0.001" in text
    assert "no measurable loss of general knowledge" in text


def test_verdict_no_evidence():
    from labkit.eval.evaluate import verdict

    same = [1.0, 0.0, 0.0] * 14
    text = verdict(fabricated_summary(same, same[1:] + same[:1], same, same))
    assert text.startswith("Fine-tuning did not measurably help on any of the 1 tasks")
    assert "no evidence either way on arithmetic" in text


def test_verdict_hurt_and_knowledge_cost():
    from labkit.eval.evaluate import verdict

    text = verdict(fabricated_summary([1.0] * 40, [0.0] * 30 + [1.0] * 10, [1.0] * 40, [0.0] * 20 + [1.0] * 20))
    assert "it made arithmetic worse" in text and ": hurt;" in text
    assert "fine-tuning cost general knowledge: -50.0 pts" in text


def test_verdict_distrusts_a_small_judge():
    from labkit.eval.evaluate import verdict

    scores = [1.0, 0.0] * 20
    small = verdict(fabricated_summary(scores, scores, scores, scores, judge={"model": "tiny", "params": 135e6}))
    assert "too small to be trusted" in small and "135M" in small
    large = verdict(fabricated_summary(scores, scores, scores, scores, judge={"model": "big", "params": 8e9}))
    assert "too small" not in large


# ----------------------------------------------------------------- notebook helpers

def test_table_examples_and_plot(evaluated):
    from labkit.eval.plots import plot_intervals
    from labkit.eval.evaluate import examples, summary_table

    _, run, summary = evaluated
    table = summary_table(summary)
    assert {"base [95% CI]", "tuned [95% CI]", "change [95% CI]", "paired p"} <= set(table.columns)
    assert {*CATEGORIES, "mc_knowledge"} <= set(table["category"])
    raw = summary_table(summary, formatted=False)
    assert (raw["base_ci_low"] <= raw["base_mean"]).all()
    shown = examples(run, k=1)
    assert set(shown["which"]) == {"best", "worst"} and "base reply" in shown.columns
    figure = plot_intervals(summary)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["base", "tuned"]


# ----------------------------------------------------------------- the CLI on a multiple-choice file

def test_cli_scores_a_multiple_choice_file(tmp_path, capsys, mc_file, tiny_model_path):
    from labkit.cli import main

    code = main(["eval", "--preset", "smoke", "--set", f"data.sources={NOT_A_FILE}", "--model", "tiny-random-llama",
                 "--data", str(mc_file), "--limit", "4", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 4 and result["model"] == "tiny-random-llama"
    for name in ("acc", "acc_norm"):
        low, high = result[f"{name}_ci"]
        assert 0 <= low <= result[name] <= high <= 1


def test_judge_grades_general_replies_and_is_paired_on_parsed_items(monkeypatch):
    from labkit.eval import judging

    replies = iter(["Good. [RESULT] 4", "no score here", "Fine [RESULT] 2", "Great [RESULT] 5"])
    records = {tag: {"general": _records("general", [0.5, 0.5], "rougeL")} for tag in ("base", "tuned")}
    judged = {tag: judging.judge_records(lambda prompts: [next(replies) for _ in prompts], per["general"], 100, 0)
              for tag, per in records.items()}
    assert [r["judge_score"] for r in judged["base"]] == [4, None]
    assert judged["tuned"][0]["category"] == "judge" and judged["tuned"][1]["judge_score"] == 5
    from labkit.eval.aggregate import compare_category

    paired = compare_category("judge", judged["base"], judged["tuned"], 100, 0)["judge_score"]
    assert paired["n"] == 1 and paired["mean_diff"] == -2.0


def test_no_judge_model_means_the_judge_is_skipped():
    from labkit.eval.judging import run_judge_on

    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE]})
    assert run_judge_on(cfg, {}) == {"skipped": "eval.judge_model is not set"}
