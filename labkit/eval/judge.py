"""LLM-as-judge with the Prometheus 2 absolute-grading format (prometheus-eval's ABSOLUTE_PROMPT).

No model is loaded here: ``run_judge`` takes a ``generate(prompts) -> replies`` callable, so the same
code drives a local judge model, an API, or a fake in tests. ``generate`` receives the plain prompt
strings; wrap them in the judge model's chat template there (Prometheus 2 expects ABS_SYSTEM_PROMPT as
the system message, or prepended to the user turn for models without a system role).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from labkit.eval.metrics import bootstrap_ci

ABS_SYSTEM_PROMPT = (
    "You are a fair judge assistant tasked with providing clear, objective feedback based on specific "
    "criteria, ensuring each assessment reflects the absolute standards set for performance."
)

_TASK_WITH_REFERENCE = (
    "An instruction (might include an Input inside it), a response to evaluate, a reference answer that "
    "gets a score of 5, and a score rubric representing a evaluation criteria are given."
)
_TASK_WITHOUT_REFERENCE = (
    "An instruction (might include an Input inside it), a response to evaluate, and a score rubric "
    "representing a evaluation criteria are given."
)
# Wording (including its grammar) kept as in prometheus-eval: the judge was trained on it.
_STEPS = (
    "1. Write a detailed feedback that assess the quality of the response strictly based on the given score "
    "rubric, not evaluating in general.\n"
    "2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the "
    "score rubric.\n"
    '3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer '
    'number between 1 and 5)"\n'
    "4. Please do not generate any other opening, closing, and explanations."
)


class JudgeInputError(ValueError):
    """A rubric or judge item is malformed."""


@dataclass(frozen=True)
class Rubric:
    """A score rubric: the criterion question and one description per score 1..5."""

    criteria: str
    descriptions: tuple[str, str, str, str, str]

    def __post_init__(self) -> None:
        if len(self.descriptions) != 5 or not all(isinstance(d, str) and d.strip() for d in self.descriptions):
            raise JudgeInputError("Rubric needs exactly 5 non-empty score descriptions (scores 1..5).")

    def render(self) -> str:
        lines = [f"[{self.criteria}]"]
        lines += [f"Score {score}: {text}" for score, text in enumerate(self.descriptions, start=1)]
        return "\n".join(lines)


HELPFULNESS = Rubric(
    "Does the model provide relevant and useful responses to the user's needs or questions?",
    (
        "The model's responses are irrelevant or unhelpful to the user's needs or queries.",
        "The model sometimes provides helpful information, but often fails to address the user's actual needs or questions.",
        "The model generally provides helpful responses that address the user's needs, though it may occasionally miss the mark.",
        "The model regularly provides helpful responses that are well-aligned with the user's inquiries, with only rare inaccuracies.",
        "The model consistently offers highly relevant and useful responses that perfectly cater to the user's needs and inquiries.",
    ),
)


def build_absolute_prompt(
    instruction: str, response: str, rubric: Rubric, reference_answer: str | None = None
) -> str:
    """The Prometheus 2 absolute-grading prompt (with or without a reference answer)."""
    task = _TASK_WITH_REFERENCE if reference_answer is not None else _TASK_WITHOUT_REFERENCE
    parts = [
        f"###Task Description:\n{task}\n{_STEPS}",
        f"###The instruction to evaluate:\n{instruction}",
        f"###Response to evaluate:\n{response}",
    ]
    if reference_answer is not None:
        parts.append(f"###Reference Answer (Score 5):\n{reference_answer}")
    parts.append(f"###Score Rubrics:\n{rubric.render()}")
    parts.append("###Feedback: ")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

# "[RESULT] 4", "[RESULT]: 4", "[RESULT] (4)", "[RESULT] [4]", "[RESULT] 4/5"
_RESULT = re.compile(r"\[RESULT\]\s*:?\s*[\(\[]?\s*([-+]?\d+(?:\.\d+)?)", re.IGNORECASE)
# fallback when the judge forgot the marker: "Score: 4", "score of 4", "Score 4/5"; a number followed
# by a colon ("Score 1: The model's responses...") is an echoed rubric line, not a verdict.
_SCORE_FALLBACK = re.compile(
    r"\bscore(?:\s*:|\s+of|\s+is)?\s*[\(\[]?\s*([-+]?\d+(?:\.\d+)?)(?!\d)(?!\s*:)", re.IGNORECASE
)
_FEEDBACK_PREFIX = re.compile(r"^\s*(?:###\s*)?Feedback\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeResult:
    score: int | None
    feedback: str
    error: str | None


def parse_judge_output(text: str) -> JudgeResult:
    """Extract the 1..5 score and the feedback from a judge reply.

    The ``[RESULT] n`` marker wins; "Score: n" is only a fallback when no marker carries a number.
    When several are present the LAST one is used: judges sometimes restate the format or revise
    their verdict, and the final statement is the verdict. A number outside 1..5 or a non-integer is
    an error (score None), never clipped.
    """
    matches = list(_RESULT.finditer(text)) or list(_SCORE_FALLBACK.finditer(text))
    if not matches:
        return JudgeResult(None, text.strip(), "no score found (expected '[RESULT] n')")
    last = matches[-1]
    feedback = _FEEDBACK_PREFIX.sub("", text[: last.start()]).strip()
    raw = last.group(1)
    if "." in raw:
        return JudgeResult(None, feedback, f"score {raw!r} is not an integer")
    score = int(raw)
    if not 1 <= score <= 5:
        return JudgeResult(None, feedback, f"score {score} is outside 1..5")
    return JudgeResult(score, feedback, None)


# --------------------------------------------------------------------------------------------
# Running and aggregating
# --------------------------------------------------------------------------------------------


def _prompt_for(item: Any, index: int, rubric: Rubric) -> str:
    if not isinstance(item, Mapping):
        raise JudgeInputError(f"judge item {index}: expected a dict, got {type(item).__name__}.")
    for field in ("instruction", "response"):
        if not isinstance(item.get(field), str):
            raise JudgeInputError(f"judge item {index}: field {field!r} must be a string.")
    reference = item.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        raise JudgeInputError(f"judge item {index}: field 'reference_answer' must be a string or absent.")
    return build_absolute_prompt(item["instruction"], item["response"], rubric, reference)


def aggregate_judgements(results: Sequence[JudgeResult], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean score with a bootstrap CI over parsed items; parse failures counted, not dropped silently."""
    scores = [r.score for r in results if r.score is not None]
    n = len(results)
    failures = n - len(scores)
    summary: dict[str, Any] = {
        "n": n,
        "n_parsed": len(scores),
        "parse_failures": failures,
        "parse_failure_rate": failures / n if n else 0.0,
        "score_counts": {str(s): scores.count(s) for s in range(1, 6)},
        "mean": None,
        "ci_low": None,
        "ci_high": None,
    }
    if scores:
        summary["mean"], summary["ci_low"], summary["ci_high"] = bootstrap_ci(scores, n_resamples, seed=seed)
    return summary


def run_judge(
    generate: Callable[[list[str]], list[str]],
    items: Sequence[Mapping],
    rubric: Rubric = HELPFULNESS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Judge items {"instruction", "response", optional "reference_answer"} with one generate call.

    Returns {"per_item": [{score, feedback, error, prompt, output}], "aggregate": {...}}.
    """
    prompts = [_prompt_for(item, i, rubric) for i, item in enumerate(items)]
    outputs = list(generate(prompts))
    if len(outputs) != len(prompts):
        raise JudgeInputError(f"generate returned {len(outputs)} replies for {len(prompts)} prompts.")
    results = [parse_judge_output(out) for out in outputs]
    per_item = [
        {**asdict(result), "prompt": prompt, "output": output}
        for result, prompt, output in zip(results, prompts, outputs)
    ]
    return {"per_item": per_item, "aggregate": aggregate_judgements(results, n_resamples, seed)}
