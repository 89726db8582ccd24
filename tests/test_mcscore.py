"""Tests for labkit.eval.mcscore: harness-style tokenisation, batched == unbatched scores, acc/acc_norm."""

import json
from pathlib import Path

import pytest
import torch

from labkit.eval import mcbatch as MB
from labkit.eval import mcscore as MC

EVALSETS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "evalsets"

# --------------------------------------------------------------------------------------------
# Items and loaders
# --------------------------------------------------------------------------------------------


def test_build_context_adds_answer_cue_once():
    assert MC.build_context("Question: Why?") == "Question: Why?\nAnswer:"
    assert MC.build_context("Q: Who?\nAnswer:") == "Q: Who?\nAnswer:"


def _write(tmp_path, rows):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"query": "Question: 1+1?", "choices": ["2", "3"], "gold": 0}


@pytest.mark.parametrize(
    "bad,message",
    [
        ("{not json", ":2: not valid JSON"),
        ({"query": "q", "choices": ["a", "b"]}, ":2: missing field 'gold'"),
        ({"query": "q", "choices": ["a", "b"], "gold": 2}, ":2: field 'gold'"),
        ({"query": "q", "choices": ["a", ""], "gold": 0}, ":2: field 'choices'[1]"),
        ({"query": "q", "choices": "ab", "gold": 0}, ":2: field 'choices'"),
        ({"query": "", "choices": ["a", "b"], "gold": 0}, ":2: field 'query'"),
        ({"query": "q", "choices": ["a", "b"], "gold": True}, ":2: field 'gold'"),
    ],
)
def test_load_mc_jsonl_names_line_and_field(tmp_path, bad, message):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(MC.MCDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MC.load_mc_jsonl(path)


def test_load_mc_jsonl_limit_and_seed(tmp_path):
    rows = [{**GOOD, "query": f"Question: {i}?"} for i in range(20)]
    path = _write(tmp_path, rows)
    assert [r["query"] for r in MC.load_mc_jsonl(path, limit=3)] == ["Question: 0?", "Question: 1?", "Question: 2?"]
    shuffled = MC.load_mc_jsonl(path, limit=5, seed=1)
    assert shuffled == MC.load_mc_jsonl(path, limit=5, seed=1)
    assert shuffled != MC.load_mc_jsonl(path, limit=5)


@pytest.mark.skipif(not (EVALSETS / "arc_challenge.jsonl").exists(), reason="shared evalsets not present")
def test_real_evalsets_load():
    arc = MC.load_mc_jsonl(EVALSETS / "arc_challenge.jsonl")
    assert len(arc) == 1172 and arc[0]["query"].startswith("Question: ")
    siqa = MC.load_mc_jsonl(EVALSETS / "siqa.jsonl", limit=5)
    assert all(MC.build_context(r["query"]) == r["query"] for r in siqa)  # already ends in "Answer:"


def test_arc_hub_adapter():
    rows = [
        {"id": "a", "question": "Which is a gas?", "choices": {"text": ["ice", "steam"], "label": ["A", "B"]}, "answerKey": "B"},
        {"id": "b", "question": "Pick 3", "choices": {"text": ["1", "2", "3"], "label": ["1", "2", "3"]}, "answerKey": "3"},
    ]
    items = MC.arc_hub_to_items(rows)
    assert items == [
        {"query": "Question: Which is a gas?", "choices": ["ice", "steam"], "gold": 1},
        {"query": "Question: Pick 3", "choices": ["1", "2", "3"], "gold": 2},
    ]
    with pytest.raises(MC.MCDataError, match="ARC row 0: answerKey 'C'"):
        MC.arc_hub_to_items([{**rows[0], "answerKey": "C"}])
    with pytest.raises(MC.MCDataError, match="ARC row 0: missing field"):
        MC.arc_hub_to_items([{"question": "q"}])


# --------------------------------------------------------------------------------------------
# acc / acc_norm on a hand-made case (no model)
# --------------------------------------------------------------------------------------------


def test_acc_norm_divides_by_choice_length_without_delimiter():
    # acc: argmax(-2, -2.9) = 0.  acc_norm (harness: len(choice)): -2/2 = -1.0 vs -2.9/3 = -0.967 -> 1.
    # (dividing by len(" " + choice) would give -0.667 vs -0.725 -> 0, which the harness does not do)
    record = MC._item_record({"choices": ["ab", "abc"], "gold": 1}, 0, [-2.0, -2.9])
    assert (record["pred"], record["pred_norm"]) == (0, 1)
    assert (record["correct"], record["correct_norm"]) == (False, True)


def test_aggregate_hand_case():
    records = [
        MC._item_record({"choices": ["a", "bb"], "gold": 0}, 0, [-1.0, -3.0]),  # pred 0, norm: -1 vs -1.5 -> 0
        MC._item_record({"choices": ["a", "bbbb"], "gold": 1}, 1, [-1.0, -3.0]),  # pred 0, norm: -1 vs -0.75 -> 1
        MC._item_record({"choices": ["a", "b"], "gold": 1}, 2, [-1.0, -1.0]),  # tie -> first index, like np.argmax
    ]
    agg = MC.aggregate_mc(records, n_resamples=200)
    assert agg["n"] == 3
    assert agg["acc"] == pytest.approx(1 / 3) and agg["acc_norm"] == pytest.approx(2 / 3)
    lo, hi = agg["acc_ci"]
    assert 0.0 <= lo <= 1 / 3 <= hi <= 1.0


# --------------------------------------------------------------------------------------------
# Tokenisation and scoring with a tiny random model
# --------------------------------------------------------------------------------------------


def test_encode_pair_follows_harness_rules(smol_tokenizer):
    tok = smol_tokenizer
    context, cont = "Question: What is the capital of France?\nAnswer:", " Paris"
    ctx_enc, cont_enc = MC.encode_pair(tok, context, cont)
    whole = tok.encode(context + cont)
    assert ctx_enc == tok.encode(context)
    assert cont_enc == whole[len(ctx_enc):] and len(cont_enc) > 0
    # trailing whitespace of the context moves to the continuation
    assert MC.encode_pair(tok, context + " ", "Paris") == (ctx_enc, cont_enc)


ITEMS = [
    {"query": "Question: Which gas do plants take in?", "choices": ["carbon dioxide", "oxygen", "helium gas balloons"], "gold": 0},
    {"query": "Question: 2+2?", "choices": ["4", "five", "22"], "gold": 0},
    {"query": "Question: A much longer question about the water cycle and where rain comes from, in detail?",
     "choices": ["evaporation from oceans", "the moon"], "gold": 0},
    {"query": "Q: Pick a letter.\nAnswer:", "choices": ["A", "B", "C", "D"], "gold": 2},
    {"query": "Question: Colour of the sky?", "choices": ["blue", "green, like grass in spring"], "gold": 0},
    # PIQA-like: long choices that share most of their tokens; one choice that starts the other; equal choices
    {"query": "Question: How do I ready a cage?\n", "choices": [
        "Line it with bedding made of ripped paper strips, then add a water bottle.",
        "Line it with bedding made of ripped jeans material, then add a water bottle."], "gold": 0},
    {"query": "Question: Sky?", "choices": ["the blue sky", "the blue sky at noon", "the blue sea"], "gold": 1},
    {"query": "Question: Same?", "choices": ["the same answer", "the same answer"], "gold": 1},
]


def _reference_scores(model, tok, items):
    """One un-padded full forward per (context, continuation) pair, as the harness computes it."""
    scores = []
    with torch.inference_mode():
        for e in MC.encode_items(tok, items):
            per_choice = []
            for cont in e.continuations:
                ids = torch.tensor([e.context + cont])
                logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
                start = len(e.context) - 1
                per_choice.append(sum(logprobs[start + j, t].item() for j, t in enumerate(cont)))
            scores.append(per_choice)
    return scores


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_batched_scores_equal_unbatched(tiny_model, smol_tokenizer, batch_size):
    reference = _reference_scores(tiny_model, smol_tokenizer, ITEMS)
    result = MC.score_multiple_choice(tiny_model, smol_tokenizer, ITEMS, batch_size=batch_size, progress=False)
    assert [r["index"] for r in result["per_item"]] == list(range(len(ITEMS)))  # input order restored
    for ref, rec in zip(reference, result["per_item"]):
        assert rec["logprobs"] == pytest.approx(ref, abs=1e-4)
    # single-token continuations (" A"...) need only the context pass; longer ones use the KV cache
    encoded = MC.encode_items(smol_tokenizer, ITEMS)
    assert {len(c) for e in encoded for c in e.continuations} >= {1, 2}
    # shared prefixes of several tokens are scored in the context pass (each choice keeps one token of its own)
    assert [MC.shared_prefix(e.continuations) for e in encoded][5:] == [7, 2, 2]
    assert result["per_item"][7]["logprobs"][0] == result["per_item"][7]["logprobs"][1]


def test_two_pass_cache_path_equals_unbatched_too(tiny_model, smol_tokenizer, monkeypatch, capsys):
    """Where the model takes no custom mask, the KV-cache path scores, says why, and gives the same numbers."""
    reference = _reference_scores(tiny_model, smol_tokenizer, ITEMS)
    monkeypatch.setattr(MC, "tree_blocker", lambda model, encoded: "a stand-in reason")
    result = MC.score_multiple_choice(tiny_model, smol_tokenizer, ITEMS, batch_size=3, progress=False)
    assert "two passes with a KV cache (a stand-in reason)" in capsys.readouterr().out
    for ref, rec in zip(reference, result["per_item"]):
        assert rec["logprobs"] == pytest.approx(ref, abs=1e-4)


def test_tree_path_with_eager_attention_equals_unbatched(tiny_model_path, smol_tokenizer):
    """The eager attention adds the mask to its scores: the additive mask must work there as in sdpa."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, attn_implementation="eager").eval()
    assert MC.tree_blocker(model, MC.encode_items(smol_tokenizer, ITEMS)) is None
    reference = _reference_scores(model, smol_tokenizer, ITEMS)
    result = MC.score_multiple_choice(model, smol_tokenizer, ITEMS, batch_size=8, progress=False)
    for ref, rec in zip(reference, result["per_item"]):
        assert rec["logprobs"] == pytest.approx(ref, abs=1e-4)


def test_tree_layout_and_mask_keep_choices_apart():
    item = MB.EncodedItem(0, context=[10, 11], continuations=[[5, 6, 7], [5, 8, 9]])   # shared prefix [5]
    ids, positions, branch, scored = MB.tree_layout(item)
    assert ids == [10, 11, 5, 6, 8]             # context + prefix, then each choice's own tokens but its last
    assert positions == [0, 1, 2, 3, 3]         # both choices continue at position 3
    assert branch == [-1, -1, -1, 0, 1]
    assert sorted(scored) == sorted([(1, 5, 0), (2, 6, 0), (3, 7, 0), (1, 5, 1), (2, 8, 1), (4, 9, 1)])
    mask = MB.tree_attention_mask(torch.tensor([branch + [-2]]), torch.float32)[0, 0] == 0   # one padding column
    expected = torch.tensor([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                             [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 0], [1, 1, 1, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_tree_blocker_names_why(tiny_model, smol_tokenizer, monkeypatch):
    encoded = MC.encode_items(smol_tokenizer, ITEMS)
    assert MC.tree_blocker(tiny_model, encoded) is None
    config = tiny_model.config
    monkeypatch.setattr(config, "_attn_implementation", "flash_attention_2")
    assert "'flash_attention_2' takes no custom mask" in MC.tree_blocker(tiny_model, encoded)
    monkeypatch.setattr(config, "_attn_implementation", "sdpa")
    monkeypatch.setattr(config, "unsloth_version", "2026.1", raising=False)
    assert "Unsloth" in MC.tree_blocker(tiny_model, encoded)
    monkeypatch.delattr(config, "unsloth_version")
    monkeypatch.setattr(config, "sliding_window", 8, raising=False)
    assert "exceeds the 8-token sliding window" in MC.tree_blocker(tiny_model, encoded)


def test_shared_prefix_leaves_each_choice_a_token():
    assert MC.shared_prefix([[1, 2, 3], [1, 2, 4]]) == 2
    assert MC.shared_prefix([[1, 2], [1, 2, 3]]) == 1
    assert MC.shared_prefix([[5], [5, 6]]) == 0
    assert MC.shared_prefix([[1, 2, 3], [1, 2, 3], [1, 9]]) == 1


def test_score_multiple_choice_records_match_the_unbatched_reference(tiny_model, smol_tokenizer):
    """pred / pred_norm / correct / acc from the harness-style reference scores, worked out here independently."""
    import numpy as np

    reference = _reference_scores(tiny_model, smol_tokenizer, ITEMS)
    tiny_model.train()   # the scorer must evaluate in eval mode and hand the model back as it found it
    result = MC.score_multiple_choice(tiny_model, smol_tokenizer, ITEMS, batch_size=4, progress=False)
    assert tiny_model.training
    tiny_model.eval()
    expected = []
    for item, scores in zip(ITEMS, reference):
        per_char = [score / len(choice) for score, choice in zip(scores, item["choices"])]
        pred, pred_norm = int(np.argmax(scores)), int(np.argmax(per_char))
        expected.append({"pred": pred, "pred_norm": pred_norm, "gold": item["gold"],
                         "correct": pred == item["gold"], "correct_norm": pred_norm == item["gold"]})
    assert [{key: r[key] for key in expected[0]} for r in result["per_item"]] == expected
    agg = result["aggregate"]
    assert agg["n"] == len(ITEMS)
    assert agg["acc"] == pytest.approx(sum(e["correct"] for e in expected) / len(ITEMS))
    assert agg["acc_norm"] == pytest.approx(sum(e["correct_norm"] for e in expected) / len(ITEMS))
    json.dumps(result)


def test_too_long_item_is_rejected(tiny_model, smol_tokenizer):
    limit = tiny_model.config.max_position_embeddings
    long_item = {"query": "Question: " + "word " * (limit + 10), "choices": ["a", "b"], "gold": 0}
    with pytest.raises(MC.MCDataError, match="item 1: .* exceed the model's"):
        MC.score_multiple_choice(tiny_model, smol_tokenizer, [ITEMS[0], long_item], progress=False)
