"""Tests for labkit.eval.metrics. Expected values are worked out by hand in the comments, not by the code."""

import json
import math

import numpy as np
import pytest

from labkit.eval import metrics as M

# --------------------------------------------------------------------------------------------
# SQuAD v1.1
# --------------------------------------------------------------------------------------------

SQUAD_CASES = [
    # (prediction, golds, expected EM, expected F1, why)
    ("The Eiffel Tower", ["eiffel tower"], 1.0, 1.0, "case + leading article"),
    ("an apple a day", ["apple day"], 1.0, 1.0, "articles a/an removed"),
    ("Paris, France!", ["paris france"], 1.0, 1.0, "ASCII punctuation removed"),
    ("U.S.A.", ["usa"], 1.0, 1.0, "dots inside a word removed, letters joined"),
    ("theater", ["the theater"], 1.0, 1.0, "'the' removed only as a whole word"),
    # em dash is not ASCII punctuation, so 'café—au' stays one token:
    # pred [café—au, lait], gold [café, au, lait]: common 1, P=1/2, R=1/3, F1=2*(1/6)/(5/6)=0.4
    ("Café—au lait", ["café au lait"], 0.0, 0.4, "unicode punctuation is kept (official script)"),
    ("", ["x"], 0.0, 0.0, "empty prediction"),
    # both normalise to "" -> EM 1, but v1.1 F1 has no common tokens -> 0
    ("the", ["a"], 1.0, 0.0, "v1.1 quirk: empty after normalisation"),
    ("blue whale", ["whale", "the blue whale", "shark"], 1.0, 1.0, "max over golds"),
    # vs 'red': P=1/3 R=1 F1=0.5; vs 'dog house': P=1/3 R=1/2 F1=0.4 -> max 0.5
    ("big red dog", ["red", "dog house"], 0.0, 0.5, "max F1 over golds"),
    # pred tokens cat,cat,cat; gold cat,cat,dog: clipped overlap 2, P=2/3, R=2/3 -> F1=2/3
    ("the the cat cat cat", ["cat cat dog"], 0.0, 2 / 3, "repeated tokens are clipped"),
    # 'dont' vs 'dont' after apostrophe removal
    ("don't", ["dont"], 1.0, 1.0, "apostrophe removed"),
    ("  many   spaces\there ", ["many spaces here"], 1.0, 1.0, "whitespace collapsed"),
]


@pytest.mark.parametrize("pred,golds,em,f1,why", SQUAD_CASES, ids=[c[4] for c in SQUAD_CASES])
def test_squad_table(pred, golds, em, f1, why):
    result = M.squad_scores([pred], [golds])
    assert result["exact_match"] == pytest.approx(em), why
    assert result["f1"] == pytest.approx(f1), why


def test_squad_means_over_items():
    # item 1: EM 1, F1 1 ; item 2: EM 0, F1 0.5 (see table) -> means 0.5 and 0.75
    result = M.squad_scores(["Eiffel Tower", "big red dog"], [["the eiffel tower"], ["red", "dog house"]])
    assert result["n"] == 2
    assert result["exact_match"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx(0.75)
    json.dumps(result)


def test_squad_rejects_bad_input():
    with pytest.raises(M.MetricInputError, match="golds\\[0\\]"):
        M.squad_scores(["x"], ["x"])  # a bare string, not a list of answers
    with pytest.raises(M.MetricInputError, match="entries"):
        M.squad_scores(["x", "y"], [["x"]])


# --------------------------------------------------------------------------------------------
# ROUGE
# --------------------------------------------------------------------------------------------


def test_rouge_hand_checked():
    # pred 3 tokens, ref 6 tokens 'the cat sat on the mat'.
    # rouge1: overlap 3 -> P=1, R=1/2, F=2/3. rouge2: pred bigrams 2, ref 5, overlap 2 -> P=1, R=2/5, F=4/7.
    # rougeL: LCS 'the cat sat' = 3 -> same as rouge1.
    result = M.rouge_scores(["the cat sat"], ["the cat sat on the mat"], use_stemmer=False)
    assert result["rouge1"] == pytest.approx(2 / 3)
    assert result["rouge2"] == pytest.approx(4 / 7)
    assert result["rougeL"] == pytest.approx(2 / 3)


def test_rouge_stemmer_parameter_matters():
    # Porter: cats->cat, running->run, runs->run: identical after stemming, disjoint without.
    assert M.rouge_scores(["cats running"], ["cat runs"], use_stemmer=True)["rouge1"] == pytest.approx(1.0)
    assert M.rouge_scores(["cats running"], ["cat runs"], use_stemmer=False)["rouge1"] == pytest.approx(0.0)


def test_rouge_equals_rouge_score_package():
    from rouge_score import rouge_scorer

    preds = ["the cat\nsat on mat", "hello there world", "nothing in common"]
    refs = ["on mat\nthe cat sat", "hello world", "completely different words"]
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
    direct = [scorer.score(r, p) for r, p in zip(refs, preds)]
    ours = M.rouge_scores(preds, refs, use_stemmer=True)
    for t in types:
        assert ours[t] == pytest.approx(np.mean([d[t].fmeasure for d in direct]), abs=1e-12)
    # rougeLsum uses the newline sentence split (union LCS per reference sentence): on the first pair
    # rougeL's LCS is 'the cat sat' (3 of 5 tokens) while rougeLsum's union LCS covers all 5 tokens.
    first = M.rouge_scores(preds[:1], refs[:1], use_stemmer=False)
    assert first["rougeL"] == pytest.approx(3 / 5)
    assert first["rougeLsum"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Function calling
# --------------------------------------------------------------------------------------------

GOLD = {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}',
        '```json\n{"name": "get_weather", "arguments": {"city": " paris ", "days": 3.0}}\n```',
        'Sure, here it is: {"name": "get_weather", "arguments": {"days": "3", "city": "PARIS"}} Hope it helps!',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 3}"}',
    ],
)
def test_function_call_correct_variants(reply):
    result = M.function_call_scores([reply], [GOLD])
    assert result["call_accuracy"] == 1.0 and result["name_accuracy"] == 1.0, result["per_item"]


@pytest.mark.parametrize(
    "reply,problem",
    [
        ('{"name": "get_weather", "arguments": {"city": "Paris"}}', "missing required argument 'days'"),
        ('{"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "unit": "C"}}', "unknown argument"),
        ('{"name": "get_weather", "arguments": {"city": "Lyon", "days": 3}}', "argument 'city'"),
        ('{"name": "get_weather", "arguments": {"city": "Paris", "days": 4}}', "argument 'days'"),
    ],
)
def test_function_call_wrong_arguments_keep_name_credit(reply, problem):
    result = M.function_call_scores([reply], [GOLD])
    assert result["name_accuracy"] == 1.0
    assert result["call_accuracy"] == 0.0
    assert any(problem in p for p in result["per_item"][0]["problems"])


def test_function_call_optional_and_bool_not_int():
    gold = {"name": "f", "arguments": {"a": 1, "flag": True}, "optional": ["flag"]}
    ok = M.function_call_scores(['{"name": "f", "arguments": {"a": 1}}'], [gold])
    assert ok["call_accuracy"] == 1.0
    bad = M.function_call_scores(['{"name": "f", "arguments": {"a": 1, "flag": 1}}'], [gold])
    assert bad["call_accuracy"] == 0.0  # True must not equal 1


def test_function_call_parse_failures_are_counted():
    replies = ["I cannot do that.", '{"arguments": {}}', '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}']
    result = M.function_call_scores(replies, [GOLD] * 3)
    assert result["n"] == 3
    assert result["parse_failures"] == 2
    assert result["call_accuracy"] == pytest.approx(1 / 3)
    assert result["per_item"][0]["parse_error"] == "no JSON object found in reply"
    assert "name" in result["per_item"][1]["parse_error"]
    json.dumps(result)


# --------------------------------------------------------------------------------------------
# Numeric answers, perplexity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("The answer is 1,234.50.", 1234.5),
        ("First 12, then 7 more, so 19", 19.0),
        ("x = -7", -7.0),
        ("pages 3-4", 4.0),
        ("#### 72", 72.0),
        ("It is .5 exactly", 0.5),
        ("about 1e3 apples", 1000.0),
        ("no digits here", None),
    ],
)
def test_extract_final_number(reply, expected):
    assert M.extract_final_number(reply) == expected


def test_numeric_answer_scores_counts_failures():
    result = M.numeric_answer_scores(["It is 4.", "I don't know", "5.0000001"], [4, 2, 5], abs_tol=1e-3)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["extraction_failures"] == 1


def test_perplexity():
    assert M.perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    assert M.perplexity(1e6, 1) == math.inf
    with pytest.raises(M.MetricInputError):
        M.perplexity(1.0, 0)


# --------------------------------------------------------------------------------------------
# Uncertainty
# --------------------------------------------------------------------------------------------


def test_bootstrap_ci_basic_properties():
    values = [0, 1] * 50
    mean, low, high = M.bootstrap_ci(values, seed=1)
    assert mean == 0.5
    assert low < 0.5 < high
    # normal approximation: 1.96 * sqrt(.25/100) = 0.098; percentile bootstrap should be close
    assert high - low == pytest.approx(2 * 0.098, abs=0.04)
    assert M.bootstrap_ci(values, seed=1) == (mean, low, high)  # reproducible
    assert M.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(M.MetricInputError):
        M.bootstrap_ci([])
    with pytest.raises(M.MetricInputError):
        M.bootstrap_ci([1.0, float("nan")])


def test_paired_test_identical_and_clear_difference():
    same = M.paired_test([0, 1, 1, 0], [0, 1, 1, 0])
    assert same["mean_diff"] == 0.0 and same["p_value"] == 1.0
    assert same["mcnemar"]["p_value"] == 1.0
    a = [0] * 40 + [1] * 10
    b = [1] * 40 + [1] * 10
    clear = M.paired_test(a, b)
    assert clear["mean_diff"] == pytest.approx(0.8)
    assert clear["ci_low"] > 0.6 and clear["p_value"] < 0.01
    # McNemar: 40 discordant, all favour b -> p = 2 * 0.5**40
    assert clear["mcnemar"]["p_value"] == pytest.approx(2 * 0.5**40)
    json.dumps(clear)


def test_mcnemar_hand_value_and_fallback_matches_scipy():
    # only_b = 3, only_a = 0: p = 2 * P(X <= 0 | n=3) = 2/8
    assert M.mcnemar_exact([0, 0, 0, 1], [1, 1, 1, 1])["p_value"] == pytest.approx(0.25)
    scipy_stats = pytest.importorskip("scipy.stats")
    for n in range(1, 25):
        for k in range(n + 1):
            expected = scipy_stats.binomtest(k, n, 0.5).pvalue
            assert M._exact_binomial_two_sided(k, n) == pytest.approx(expected, rel=1e-9)


def test_paired_test_continuous_has_no_mcnemar():
    result = M.paired_test([0.1, 0.5, 0.7], [0.2, 0.5, 0.9])
    assert "mcnemar" not in result
    assert result["mean_diff"] == pytest.approx(0.1)


def test_mean_std():
    assert M.mean_std([1, 2, 3]) == {"n": 3, "mean": 2.0, "std": 1.0}
    assert M.mean_std([5]) == {"n": 1, "mean": 5.0, "std": None}
