"""Pure evaluation metrics: no model code, no torch.

Every scorer returns plain, JSON-serialisable dicts (fractions in 0..1, not percentages) and keeps
failures (unparseable replies, missing numbers) as counted records instead of dropping them, so a
reported accuracy always has the full item count as its denominator.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labkit.infer.calls import parse_function_call  # the parser lives with inference (the tool loop uses it too)


class MetricInputError(ValueError):
    """Bad input to a metric (mismatched lengths, empty lists, malformed gold records)."""


def _check_same_length(name_a: str, a: Sequence, name_b: str, b: Sequence) -> None:
    if len(a) != len(b):
        raise MetricInputError(
            f"{name_a} has {len(a)} entries but {name_b} has {len(b)}; pass one per item, in the same order."
        )


# --------------------------------------------------------------------------------------------
# SQuAD v1.1 exact match / F1 (the official evaluate-v1.1.py, written out here because it is a
# 30-line script that is not published as an importable package).
# --------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = set(string.punctuation)  # official script: ASCII punctuation only


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower, drop ASCII punctuation, drop a/an/the, collapse spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token-level F1 on normalised text (v1.1: 0.0 when either side is empty after normalising)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean EM and F1 over items, each the max over that item's gold answers."""
    _check_same_length("predictions", predictions, "golds", golds)
    if not predictions:
        raise MetricInputError("squad_scores needs at least one item.")
    per_item = []
    for i, (pred, answers) in enumerate(zip(predictions, golds)):
        if isinstance(answers, str) or not answers:
            raise MetricInputError(f"golds[{i}] must be a non-empty list of answer strings, got {answers!r}.")
        per_item.append({
            "exact_match": max(squad_exact_match(pred, g) for g in answers),
            "f1": max(squad_f1(pred, g) for g in answers),
        })
    return {
        "n": len(per_item),
        "exact_match": float(np.mean([r["exact_match"] for r in per_item])),
        "f1": float(np.mean([r["f1"] for r in per_item])),
        "per_item": per_item,
    }


# --------------------------------------------------------------------------------------------
# ROUGE through Google's rouge-score package (the reference implementation; offline, no nltk data).
# --------------------------------------------------------------------------------------------

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    use_stemmer: bool = True,
    rouge_types: Sequence[str] = ROUGE_TYPES,
) -> dict[str, Any]:
    """Mean ROUGE F-measure per type. For rougeLsum, separate sentences with newlines."""
    from rouge_score import rouge_scorer

    _check_same_length("predictions", predictions, "references", references)
    if not predictions:
        raise MetricInputError("rouge_scores needs at least one pair.")
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    # rouge-score's signature is score(target, prediction): reference first.
    fmeasures = {t: [] for t in rouge_types}
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        for t in rouge_types:
            fmeasures[t].append(scores[t].fmeasure)
    result: dict[str, Any] = {"n": len(predictions), "use_stemmer": use_stemmer}
    result.update({t: float(np.mean(v)) for t, v in fmeasures.items()})
    return result


# --------------------------------------------------------------------------------------------
# Function calling (in the spirit of BFCL's AST checker)
# --------------------------------------------------------------------------------------------

def normalize_value(value: Any) -> Any:
    """Comparable form: numbers and numeric strings -> float, strings -> casefolded with collapsed
    whitespace, containers recursively. Booleans stay booleans (True must not equal 1)."""
    if isinstance(value, bool):
        return ("bool", value)  # tagged: in Python True == 1 == 1.0
    if value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        try:
            number = float(stripped.replace(",", "")) if stripped else None
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
        return " ".join(stripped.casefold().split())
    if isinstance(value, Mapping):
        return {str(k): normalize_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_value(v) for v in value]
    return value


def check_call(predicted: Mapping, gold: Mapping) -> list[str]:
    """Mismatch reasons (empty list = the call is correct). gold: {"name", "arguments", optional
    "optional": [arg names that may be omitted]}; every other gold argument is required."""
    problems = []
    if predicted["name"].strip() != str(gold["name"]).strip():
        problems.append(f"name {predicted['name']!r} != {gold['name']!r}")
    gold_args = gold.get("arguments", {})
    optional = set(gold.get("optional", []))
    pred_args = predicted["arguments"]
    for key in gold_args:
        if key not in pred_args and key not in optional:
            problems.append(f"missing required argument {key!r}")
    for key, value in pred_args.items():
        if key not in gold_args:
            problems.append(f"unknown argument {key!r}")
        elif normalize_value(value) != normalize_value(gold_args[key]):
            problems.append(f"argument {key!r}: {value!r} != {gold_args[key]!r}")
    return problems


def function_call_scores(replies: Sequence[str], golds: Sequence[Mapping]) -> dict[str, Any]:
    """Name accuracy and full-call accuracy over ALL items; parse failures count as wrong and
    are listed with their reason."""
    _check_same_length("replies", replies, "golds", golds)
    if not replies:
        raise MetricInputError("function_call_scores needs at least one item.")
    records = []
    for i, (reply, gold) in enumerate(zip(replies, golds)):
        if "name" not in gold:
            raise MetricInputError(f"golds[{i}] has no 'name'; expected {{'name': ..., 'arguments': {{...}}}}.")
        call, error = parse_function_call(reply)
        problems = check_call(call, gold) if call else []
        records.append({
            "parsed": call is not None,
            "parse_error": error,
            "name_correct": bool(call) and call["name"].strip() == str(gold["name"]).strip(),
            "call_correct": bool(call) and not problems,
            "problems": problems,
        })
    n = len(records)
    return {
        "n": n,
        "name_accuracy": sum(r["name_correct"] for r in records) / n,
        "call_accuracy": sum(r["call_correct"] for r in records) / n,
        "parse_failures": sum(not r["parsed"] for r in records),
        "per_item": records,
    }


# --------------------------------------------------------------------------------------------
# Numeric final answers (arithmetic / GSM8K-style)
# --------------------------------------------------------------------------------------------

# Optional sign (only when not glued to a preceding word, so "3-4" ends in 4, not -4), digits with
# optional thousands commas, optional decimals, optional exponent.
_NUMBER = re.compile(
    r"(?:(?<![\w.])[-+])?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
)


def extract_final_number(reply: str) -> float | None:
    """The last number in the reply ("The answer is 1,234.50." -> 1234.5); None if there is none."""
    matches = _NUMBER.findall(reply)
    if not matches:
        return None
    return float(matches[-1].replace(",", ""))


def numeric_answer_scores(
    replies: Sequence[str], golds: Sequence[float], abs_tol: float = 1e-6, rel_tol: float = 0.0
) -> dict[str, Any]:
    """Accuracy over ALL items (no number found = wrong, and counted in extraction_failures)."""
    _check_same_length("replies", replies, "golds", golds)
    if not replies:
        raise MetricInputError("numeric_answer_scores needs at least one item.")
    records = []
    for reply, gold in zip(replies, golds):
        value = extract_final_number(reply)
        correct = value is not None and math.isclose(value, float(gold), rel_tol=rel_tol, abs_tol=abs_tol)
        records.append({"extracted": value, "gold": float(gold), "correct": correct})
    n = len(records)
    return {
        "n": n,
        "accuracy": sum(r["correct"] for r in records) / n,
        "extraction_failures": sum(r["extracted"] is None for r in records),
        "per_item": records,
    }


def perplexity(total_nll: float, n_tokens: int) -> float:
    """exp(mean negative log-likelihood per token); inf if it overflows."""
    if n_tokens <= 0:
        raise MetricInputError(f"n_tokens must be positive, got {n_tokens}.")
    try:
        return math.exp(total_nll / n_tokens)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------------------------
# Uncertainty
# --------------------------------------------------------------------------------------------
# The bootstrap is done with numpy, not scipy.stats.bootstrap: scipy is not a dependency of labkit
# (it is only present when lm-eval is installed), scipy's default method (BCa) would give different
# intervals than the plain percentile bootstrap documented here, and the percentile bootstrap of a
# mean is a few vectorised numpy lines that are reproducible from a seed.


def _as_finite_array(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise MetricInputError(f"{name} must be a non-empty 1-D sequence of numbers.")
    if not np.all(np.isfinite(array)):
        raise MetricInputError(f"{name} contains NaN or inf; remove or count those items first.")
    return array


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_resamples, values.size))
    return values[idx].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap CI of the mean."""
    array = _as_finite_array(values, "values")
    if not 0 < confidence < 1:
        raise MetricInputError(f"confidence must be in (0, 1), got {confidence}.")
    means = _bootstrap_means(array, n_resamples, seed)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(array.mean()), float(low), float(high)


def _exact_binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p-value for p=0.5 (used when scipy is missing). The null is symmetric,
    so it is twice the smaller tail, capped at 1 - equal to scipy.stats.binomtest(k, n, 0.5)."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Exact McNemar test for paired 0/1 outcomes: binomial test on the discordant pairs."""
    only_a = int(sum(1 for x, y in zip(a, b) if x == 1 and y == 0))
    only_b = int(sum(1 for x, y in zip(a, b) if x == 0 and y == 1))
    n = only_a + only_b
    if n == 0:
        p_value = 1.0
    else:
        try:
            from scipy.stats import binomtest

            p_value = float(binomtest(only_b, n, 0.5).pvalue)
        except ImportError:
            p_value = _exact_binomial_two_sided(only_b, n)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p_value}


def paired_test(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Compare b (e.g. fine-tuned) with a (base) scored on the SAME items, in the same order.

    Paired bootstrap of mean(b - a): CI by percentiles; two-sided p-value by the shifted-null
    bootstrap, p = (1 + #{|boot - mean| >= |mean|}) / (1 + n_resamples). For 0/1 scores the exact
    McNemar test is added."""
    a_arr = _as_finite_array(a, "a")
    b_arr = _as_finite_array(b, "b")
    _check_same_length("a", a_arr, "b", b_arr)
    diff = b_arr - a_arr
    mean_diff, low, high = bootstrap_ci(diff, n_resamples, confidence, seed)
    boot = _bootstrap_means(diff, n_resamples, seed)
    extreme = np.sum(np.abs(boot - mean_diff) >= abs(mean_diff) - 1e-12)
    result: dict[str, Any] = {
        "n": int(diff.size),
        "mean_a": float(a_arr.mean()),
        "mean_b": float(b_arr.mean()),
        "mean_diff": mean_diff,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "p_value": float((1 + extreme) / (1 + n_resamples)),
    }
    if set(np.unique(np.concatenate([a_arr, b_arr]))) <= {0.0, 1.0}:
        result["mcnemar"] = mcnemar_exact(a_arr.tolist(), b_arr.tolist())
    return result


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over repeated runs; std is None for one run."""
    array = _as_finite_array(values, "values")
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {"n": int(array.size), "mean": float(array.mean()), "std": std}
