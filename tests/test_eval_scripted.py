"""The evaluation stage scored against a scripted stand-in model that knows the right (and a wrong) answer.

The tiny random model answers nothing right, so on its own it cannot show that a correct reply is scored as
correct. Here ``run_evaluation`` runs unchanged on a fabricated run (base model + a LoRA adapter) except for
two seams, both below the scoring:

- ``labkit.infer.generate.generate_chat`` (what the evaluation calls to generate) returns, per prompt, the gold reply,
  a wrong one or a partly right one, chosen per model ("base" / "tuned") by the tables below;
- ``labkit.eval.mcscore.score_batch`` (the model's log-likelihood of each choice) returns scripted log-probs.

Everything else is the real path: prompt splitting and ordering, gold lookup, category dispatch, SQuAD /
ROUGE / call / numeric scoring, acc / acc_norm, records on disk, bootstrap means and the paired comparison.
Every expected number below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import json

import pytest

from labkit.config import load_config
from labkit.eval import items as eval_items
from labkit.runs import Run, read_jsonl, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread_module")

CALL = {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}


def _row(category: str, i: int, user: str, answer: str, reference: dict) -> dict:
    return {"id": f"{category}-{i}", "category": category, "source": f"test/{category}", "reference": reference,
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


# (prepared test row, {kind: the reply the stand-in gives}) per category, three items each
CASES: dict[str, list[tuple[dict, dict[str, str]]]] = {
    "function_calling": [
        (_row("function_calling", i, f"Call the weather tool for Oslo ({i}).", json.dumps(CALL), CALL), {
            # a fenced call with differently cased / spaced values is still the gold call
            "gold": '```json\n{"name": "get_weather", "arguments": {"city": " oslo ", "unit": "Celsius"}}\n```',
            "wrong": '{"name": "get_time", "arguments": {"city": "Oslo"}}',
            "partial": '{"name": "get_weather", "arguments": {"city": "Bergen", "unit": "celsius"}}',
            "unparseable": "Sorry, I cannot call tools."}) for i in range(3)],
    "reading_qa": [
        (_row("reading_qa", i, f"Context: The cow ({i}) sleeps in the red barn.\nQuestion: Where does it sleep?",
              "In the red barn.", {"answers": ["the red barn", "barn"]}), {
            "gold": "The red barn.",                 # normalised "red barn": exact match with the first answer
            "wrong": "in the kitchen",
            "partial": "red barn near the river"})   # "red barn near river" vs "red barn": P 2/4, R 2/2, F1 2/3
        for i in range(3)],
    "arithmetic": [
        (_row("arithmetic", i, f"What is 1,000 + {234 + i}?", f"1,000 + {234 + i} = {1234 + i}",
              {"answer": 1234 + i}), {
            "gold": f"Adding them gives 1,{234 + i}.",   # the last number, thousands comma removed
            "wrong": f"It is {1234 + i} - 1 = {1233 + i}."}) for i in range(3)],
    "general": [
        (_row("general", 0, "Tell me about tea.", "Tea is brewed from dried leaves.", {}),
         {"gold": "Tea is brewed from dried leaves.", "wrong": "Bicycles need air in their tyres."}),
        # reference "the cat sat on the warm mat" vs "the cat sat on the cold floor" (7 tokens each):
        # unigrams in common the x2, cat, sat, on = 5 -> ROUGE-1 5/7; bigrams the-cat, cat-sat, sat-on, on-the
        # = 4 of 6 -> ROUGE-2 2/3; longest common subsequence "the cat sat on the" = 5 -> ROUGE-L(sum) 5/7
        (_row("general", 1, "Where did the cat sit?", "The cat sat on the warm mat.", {}),
         {"gold": "The cat sat on the warm mat.", "wrong": "Bicycles need air in their tyres.",
          "partial": "The cat sat on the cold floor."}),
        (_row("general", 2, "What do bees make?", "Bees make honey from nectar.", {}),
         {"gold": "Bees make honey from nectar.", "wrong": "Trains run on steel rails."}),
    ],
}
# What each model answers, item by item
KINDS = {
    "base": {"function_calling": ["wrong", "partial", "unparseable"], "reading_qa": ["wrong", "partial", "wrong"],
             "arithmetic": ["wrong", "wrong", "wrong"], "general": ["wrong", "partial", "wrong"],
             "mc_knowledge": ["wrong", "split", "wrong"]},
    "tuned": {"function_calling": ["gold", "gold", "partial"], "reading_qa": ["gold", "gold", "partial"],
              "arithmetic": ["gold", "gold", "gold"], "general": ["gold", "partial", "gold"],
              "mc_knowledge": ["gold", "gold", "split"]},
}
# Per-example scores of each kind of reply, worked out by hand
SCORES = {
    "function_calling": {"gold": {"name_accuracy": 1.0, "call_accuracy": 1.0},
                         "wrong": {"name_accuracy": 0.0, "call_accuracy": 0.0},
                         "partial": {"name_accuracy": 1.0, "call_accuracy": 0.0},
                         "unparseable": {"name_accuracy": 0.0, "call_accuracy": 0.0}},
    "reading_qa": {"gold": {"exact_match": 1.0, "f1": 1.0}, "wrong": {"exact_match": 0.0, "f1": 0.0},
                   "partial": {"exact_match": 0.0, "f1": 2 / 3}},
    "arithmetic": {"gold": {"accuracy": 1.0}, "wrong": {"accuracy": 0.0}},
    "general": {"gold": dict.fromkeys(("rouge1", "rouge2", "rougeL", "rougeLsum"), 1.0),
                "wrong": dict.fromkeys(("rouge1", "rouge2", "rougeL", "rougeLsum"), 0.0),
                "partial": {"rouge1": 5 / 7, "rouge2": 2 / 3, "rougeL": 5 / 7, "rougeLsum": 5 / 7}},
    "mc_knowledge": {"gold": {"acc": 1.0, "acc_norm": 1.0}, "wrong": {"acc": 0.0, "acc_norm": 0.0},
                     "split": {"acc": 1.0, "acc_norm": 0.0}},
}
MC_ITEMS = [
    {"id": "mc_knowledge-0", "query": "Question: Which planet is closest to the Sun?",
     "choices": ["Mercury", "Mars", "Venus"], "gold": 0},
    {"id": "mc_knowledge-1", "query": "Question: What is frozen water called?", "choices": ["ice", "steam"],
     "gold": 0},
    {"id": "mc_knowledge-2", "query": "Question: What do bees make?", "choices": ["honey", "woollen jumpers"],
     "gold": 0},
]
# "split": the raw sum picks the gold, the sum per character of the choice (the harness's acc_norm) does not:
# ice -3 > steam -4.8, but -3/3 = -1.0 < -4.8/5 = -0.96; honey -3 > -8.5, but -3/5 = -0.6 < -8.5/15 = -0.567.
# (Dividing by the length with the leading space instead would keep the gold: -3/4 > -4.8/6, -3/6 > -8.5/16.)
MC_LOGPROBS = {"split": {1: [-3.0, -4.8], 2: [-3.0, -8.5]}}


def _mc_logprobs(kind: str, index: int) -> list[float]:
    item = MC_ITEMS[index]
    if kind == "split":
        return MC_LOGPROBS["split"][index]
    chosen = item["gold"] if kind == "gold" else (item["gold"] + 1) % len(item["choices"])
    return [-1.0 if k == chosen else -40.0 for k in range(len(item["choices"]))]


def _mean(category: str, tag: str, metric: str) -> float:
    return sum(SCORES[category][kind][metric] for kind in KINDS[tag][category]) / 3


@pytest.fixture(scope="module")
def scripted(tmp_path_factory, tiny_model_path):
    """run_evaluation on base and tuned, with the scripted replies and log-probs."""
    import peft

    import labkit.eval.evaluate as evaluate
    import labkit.infer.generate as infer
    import labkit.eval.mcscore as mcscore
    from labkit.models import load_causal_lm, load_tokenizer

    root = tmp_path_factory.mktemp("scripted")
    cfg = load_config("smoke", {"data.sources": ["fabricated/hub-dataset"], "eval.limit": 3, "eval.bootstrap": 200,
                                "eval.judge_model": None})
    run = Run.open("scripted", cfg, root=root)
    write_jsonl(run.path("data", "test.jsonl"), [row for cases in CASES.values() for row, _ in cases])
    mc_file = root / "mc.jsonl"
    write_jsonl(mc_file, MC_ITEMS)
    lora = peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft.get_peft_model(load_causal_lm("tiny-random-llama"), lora).save_pretrained(run.path("adapter"))
    load_tokenizer("tiny-random-llama").save_pretrained(run.path("adapter"))

    replies = {row["messages"][0]["content"]: (category, i, answers)
               for category, cases in CASES.items() for i, (row, answers) in enumerate(cases)}
    calls = []
    real_load = evaluate.load_eval_model

    def load_tagged(cfg, adapter=None, *args, **kwargs):   # the real model, labelled with the model it is
        model = real_load(cfg, adapter, *args, **kwargs)
        model.labkit_test_tag = "tuned" if adapter is not None else "base"
        return model

    def scripted_generate(model, tokenizer, conversations, sampling=None, batch_size=8, progress=False):
        calls.append(len(conversations))
        out = []
        for conversation in conversations:
            category, i, answers = replies[conversation[-1]["content"]]
            out.append(answers[KINDS[model.labkit_test_tag][category][i]])
        return out

    def scripted_scores(model, batch, pad_id):
        assert all(len(e.continuations) == len(MC_ITEMS[e.index]["choices"]) for e in batch)
        return [_mc_logprobs(KINDS[model.labkit_test_tag]["mc_knowledge"][e.index], e.index) for e in batch]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eval_items, "mc_path", lambda: mc_file)
        patch.setattr(evaluate, "load_eval_model", load_tagged)
        patch.setattr(infer, "generate_chat", scripted_generate)
        patch.setattr(mcscore, "score_batch", scripted_scores)
        summary = evaluate.run_evaluation(cfg, run, progress=False)
    assert calls == [12, 12], "one generation pass per model over the 4 x 3 prompts"
    return run, summary


@pytest.mark.parametrize("category", [*CASES, "mc_knowledge"])
@pytest.mark.parametrize("tag", ["base", "tuned"])
def test_each_record_has_the_score_of_the_reply_it_got(scripted, tag, category):
    run, _ = scripted
    records = read_jsonl(run.path("eval", tag, f"{category}.jsonl"))
    assert [r["id"] for r in records] == [f"{category}-{i}" for i in range(3)]
    for record, kind in zip(records, KINDS[tag][category]):
        got = {metric: record[metric] for metric in SCORES[category][kind]}
        assert got == pytest.approx(SCORES[category][kind]), (record["id"], kind, record["prediction"])
        if category in CASES:
            assert record["prediction"] == CASES[category][int(record["id"][-1])][1][kind]


def test_records_show_the_gold_answer_of_their_own_row(scripted):
    run, _ = scripted
    records = {c: read_jsonl(run.path("eval", "tuned", f"{c}.jsonl")) for c in (*CASES, "mc_knowledge")}
    assert [r["reference"] for r in records["function_calling"]] == [CALL] * 3
    assert [r["reference"] for r in records["reading_qa"]] == [["the red barn", "barn"]] * 3
    assert [r["reference"] for r in records["arithmetic"]] == [1234.0, 1235.0, 1236.0]
    assert [r["extracted"] for r in records["arithmetic"]] == [1234.0, 1235.0, 1236.0]
    assert records["general"][1]["reference"] == "The cat sat on the warm mat."
    assert [r["reference"] for r in records["mc_knowledge"]] == ["Mercury", "ice", "honey"]
    # tuned item 2 is "split": acc picks the gold, acc_norm (shown as the prediction) the other choice
    assert [r["prediction"] for r in records["mc_knowledge"]] == ["Mercury", "ice", "woollen jumpers"]
    assert [(r["pred"], r["pred_norm"], r["gold"]) for r in records["mc_knowledge"]] == [(0, 0, 0), (0, 0, 0),
                                                                                        (0, 1, 0)]
    base_calls = read_jsonl(run.path("eval", "base", "function_calling.jsonl"))
    assert base_calls[2]["parse_error"] == "no JSON object found in reply"
    assert base_calls[1]["problems"] == ["argument 'city': 'Bergen' != 'Oslo'"]


# Means per model, by hand from KINDS and SCORES (e.g. reading_qa f1, base: (0 + 2/3 + 0) / 3 = 2/9)
EXPECTED_MEANS = {
    "base": {"function_calling": {"call_accuracy": 0.0, "name_accuracy": 1 / 3},
             "reading_qa": {"f1": 2 / 9, "exact_match": 0.0}, "arithmetic": {"accuracy": 0.0},
             "general": {"rouge1": 5 / 21, "rouge2": 2 / 9, "rougeL": 5 / 21, "rougeLsum": 5 / 21},
             "mc_knowledge": {"acc": 1 / 3, "acc_norm": 0.0}},
    "tuned": {"function_calling": {"call_accuracy": 2 / 3, "name_accuracy": 1.0},
              "reading_qa": {"f1": 8 / 9, "exact_match": 2 / 3}, "arithmetic": {"accuracy": 1.0},
              "general": {"rouge1": 19 / 21, "rouge2": 8 / 9, "rougeL": 19 / 21, "rougeLsum": 19 / 21},
              "mc_knowledge": {"acc": 1.0, "acc_norm": 2 / 3}},
}


@pytest.mark.parametrize("tag", ["base", "tuned"])
def test_summary_means_are_the_hand_computed_ones(scripted, tag):
    _, summary = scripted
    for category, expected in EXPECTED_MEANS[tag].items():
        result = summary["results"][tag][category]
        assert result["n"] == 3
        means = {metric: result["metrics"][metric]["mean"] for metric in expected}
        assert means == pytest.approx(expected), category
        assert means == pytest.approx({m: _mean(category, tag, m) for m in expected})  # the tables agree
        for metric, value in expected.items():
            if value in (0.0, 1.0):   # every item scored the same: the interval has no width
                stats = result["metrics"][metric]
                assert stats["ci_low"] == stats["ci_high"] == pytest.approx(value), (category, metric)


def test_paired_comparison_of_tuned_against_base(scripted):
    _, summary = scripted
    comparison = summary["comparison"]
    # tuned - base per item, then its mean
    expected_diff = {("function_calling", "call_accuracy"): 2 / 3,    # [1-0, 1-0, 0-0]
                     ("function_calling", "name_accuracy"): 2 / 3,    # [1-0, 1-1, 1-0]
                     ("reading_qa", "f1"): 2 / 3,                     # [1, 1 - 2/3, 2/3]
                     ("reading_qa", "exact_match"): 2 / 3,            # [1, 1, 0]
                     ("arithmetic", "accuracy"): 1.0,
                     ("general", "rouge2"): 2 / 3,                    # [1, 2/3 - 2/3, 1]
                     ("general", "rougeL"): 2 / 3,
                     ("mc_knowledge", "acc"): 2 / 3,                  # [1, 0, 1]
                     ("mc_knowledge", "acc_norm"): 2 / 3}             # [1, 1, 0]
    for (category, metric), diff in expected_diff.items():
        paired = comparison[category][metric]
        assert paired["n"] == 3, (category, metric)
        assert paired["mean_diff"] == pytest.approx(diff), (category, metric)
        assert paired["mean_a"] == pytest.approx(EXPECTED_MEANS["base"][category][metric]), (category, metric)
        assert paired["mean_b"] == pytest.approx(EXPECTED_MEANS["tuned"][category][metric]), (category, metric)
    # every item went from wrong to right: the interval of the difference is [1, 1], so "better"
    arithmetic = comparison["arithmetic"]["accuracy"]
    assert (arithmetic["ci_low"], arithmetic["ci_high"], arithmetic["outcome"]) == (1.0, 1.0, "better")
    assert arithmetic["p_value"] < 0.001
    assert arithmetic["mcnemar"]["only_a_correct"] == 0 and arithmetic["mcnemar"]["only_b_correct"] == 3
    assert comparison["function_calling"]["call_accuracy"]["mcnemar"]["only_b_correct"] == 2
    # acc: base [0, 1, 0], tuned [1, 1, 1]: 2 discordant pairs, both for tuned; exact binomial p = 2 * 0.5**2
    assert comparison["mc_knowledge"]["acc"]["mcnemar"] == {"only_a_correct": 0, "only_b_correct": 2,
                                                            "p_value": pytest.approx(0.5)}
    assert "mcnemar" not in comparison["reading_qa"]["f1"]   # partial F1 values are not 0/1 outcomes
