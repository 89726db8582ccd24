"""Per-example scores for each category, with labkit.eval.metrics doing the scoring.

Each category lists its metrics (:data:`METRICS`): the per-example record field that holds the score,
whether higher is better, and a label for tables. Every score is kept per example, because the intervals
and the paired base-vs-tuned test are computed from the per-example values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.eval import metrics
from labkit.eval.items import gold_answers, gold_call, gold_number


@dataclass(frozen=True)
class Metric:
    name: str                      # key in the summary and a field of each per-example record
    label: str                     # for tables and plots
    higher_is_better: bool = True
    percent: bool = True           # a 0..1 fraction shown as a percentage


METRICS: dict[str, tuple[Metric, ...]] = {
    "function_calling": (Metric("call_accuracy", "full-call accuracy"), Metric("name_accuracy", "name accuracy")),
    "reading_qa": (Metric("f1", "SQuAD F1"), Metric("exact_match", "SQuAD exact match")),
    "arithmetic": (Metric("accuracy", "exact numeric accuracy"),),
    "general": (Metric("rougeL", "ROUGE-L"), Metric("rouge1", "ROUGE-1"), Metric("rouge2", "ROUGE-2"),
                Metric("rougeLsum", "ROUGE-Lsum"),
                Metric("perplexity", "perplexity (assistant tokens)", higher_is_better=False, percent=False)),
    "mc_knowledge": (Metric("acc_norm", "multiple-choice acc_norm"), Metric("acc", "multiple-choice acc")),
    "judge": (Metric("judge_score", "judge score (1-5)", percent=False),),
}


def scored_as(category: str) -> str:
    """The category whose metrics and scorer ``category`` uses: a multiple-choice suite's (arc_challenge, a custom
    file) are mc_knowledge's, SQuAD's are reading_qa's; any other category is itself."""
    from labkit.eval.suites.registry import scored_as as suite_scored_as  # lazy: the suites import mcscore (torch)

    return category if category in METRICS else suite_scored_as(category)


def metrics_for(category: str) -> tuple[Metric, ...]:
    """The metrics of a category; categories labkit does not know are scored with ROUGE like 'general'."""
    return METRICS.get(scored_as(category), METRICS["general"][:4])


def primary_metric(category: str) -> Metric:
    """The metric the verdict talks about for a category (the first listed)."""
    return metrics_for(category)[0]


def score_function_calling(rows: Sequence[Mapping], predictions: Sequence[str]) -> list[dict[str, Any]]:
    result = metrics.function_call_scores(predictions, [gold_call(r) for r in rows])
    return [{"name_accuracy": float(item["name_correct"]), "call_accuracy": float(item["call_correct"]),
             "parse_error": item["parse_error"], "problems": item["problems"]} for item in result["per_item"]]


def score_reading_qa(rows: Sequence[Mapping], predictions: Sequence[str]) -> list[dict[str, Any]]:
    result = metrics.squad_scores(predictions, [gold_answers(r) for r in rows])
    return [dict(item) for item in result["per_item"]]


def score_arithmetic(rows: Sequence[Mapping], predictions: Sequence[str]) -> list[dict[str, Any]]:
    result = metrics.numeric_answer_scores(predictions, [gold_number(r) for r in rows])
    return [{"accuracy": float(item["correct"]), "extracted": item["extracted"], "gold": item["gold"]}
            for item in result["per_item"]]


def score_rouge(references: Sequence[str], predictions: Sequence[str]) -> list[dict[str, Any]]:
    """ROUGE-1/2/L/Lsum F-measure per example (rouge-score, stemmed), via labkit.eval.metrics one pair at a time."""
    scores = []
    for reference, prediction in zip(references, predictions):
        result = metrics.rouge_scores([prediction], [reference])
        scores.append({name: result[name] for name in metrics.ROUGE_TYPES})
    return scores


SCORERS = {
    "function_calling": score_function_calling,
    "reading_qa": score_reading_qa,
    "arithmetic": score_arithmetic,
}


def score_category(category: str, rows: Sequence[Mapping], predictions: Sequence[str],
                   references: Sequence[str]) -> list[dict[str, Any]]:
    """Per-example score fields for ``category`` (unknown categories: ROUGE against the reference reply)."""
    scorer = SCORERS.get(scored_as(category))
    if scorer is not None:
        return scorer(rows, predictions)
    return score_rouge(references, predictions)


def display_reference(category: str, row: Mapping, reply: str) -> Any:
    """What a record shows as its reference: the gold call / answers / number, else the reference reply."""
    if category == "function_calling":
        return gold_call(row)
    if scored_as(category) == "reading_qa":
        return gold_answers(row)
    if category == "arithmetic":
        return gold_number(row)
    return reply
