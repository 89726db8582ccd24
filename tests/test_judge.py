"""Tests for labkit.eval.judge: Prometheus 2 prompt format and the robust score parser."""

import json

import pytest

from labkit.eval import judge as J

RUBRIC = J.Rubric("Is the answer correct?", ("wrong", "mostly wrong", "half right", "mostly right", "right"))


def test_prompt_has_prometheus_sections_in_order():
    prompt = J.build_absolute_prompt("What is 2+2?", "4", RUBRIC, reference_answer="4")
    headers = [
        "###Task Description:",
        "###The instruction to evaluate:\nWhat is 2+2?",
        "###Response to evaluate:\n4",
        "###Reference Answer (Score 5):\n4",
        "###Score Rubrics:\n[Is the answer correct?]\nScore 1: wrong\nScore 2: mostly wrong",
        "Score 5: right",
    ]
    positions = [prompt.index(h) for h in headers]
    assert positions == sorted(positions)
    assert prompt.endswith("\n\n###Feedback: ")
    assert '"(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"' in prompt
    assert "a reference answer that gets a score of 5" in prompt


def test_prompt_without_reference_drops_the_section():
    prompt = J.build_absolute_prompt("Say hi", "hi", RUBRIC)
    assert "###Reference Answer" not in prompt
    assert "a reference answer" not in prompt


def test_rubric_needs_five_descriptions():
    with pytest.raises(J.JudgeInputError):
        J.Rubric("x", ("a", "b", "c", "d"))


@pytest.mark.parametrize(
    "text,score",
    [
        ("The answer is correct and concise. [RESULT] 4", 4),
        ("Feedback: good. [RESULT]: 5", 5),
        ("Fine. [RESULT] (3)", 3),
        ("Fine. [RESULT] [2]", 2),
        ("ok [result] 4/5", 4),
        ("Good.\n[RESULT] 4\n\nI hope this helps!", 4),  # trailing text
        ("Not bad. Score: 3", 3),  # fallback without the marker
        ("I would give it a score of 2.", 2),
        ("First [RESULT] 2. On reflection the response is right. [RESULT] 5", 5),  # last one wins
        ("Score 1: rubric echo\nScore 5: rubric echo\nMy verdict [RESULT] 3", 3),
    ],
)
def test_parse_well_formed_and_tolerated(text, score):
    result = J.parse_judge_output(text)
    assert result.error is None, result
    assert result.score == score


@pytest.mark.parametrize(
    "text,error_part",
    [
        ("The response is fine.", "no score found"),
        ("Great [RESULT] 7", "outside 1..5"),
        ("Bad [RESULT] 0", "outside 1..5"),
        ("Meh [RESULT] 3.5", "not an integer"),
        ("Echo: [RESULT] (an integer number between 1 and 5)", "no score found"),
        ("Score 1: The model's responses are irrelevant.\nScore 2: sometimes helpful", "no score found"),
        ("", "no score found"),
    ],
)
def test_parse_malformed_gives_error_not_score(text, error_part):
    result = J.parse_judge_output(text)
    assert result.score is None
    assert error_part in result.error


def test_feedback_is_text_before_the_result():
    result = J.parse_judge_output("Feedback: Clear and correct.\n[RESULT] 5")
    assert result.feedback == "Clear and correct."


def test_run_judge_counts_failures_and_aggregates():
    items = [{"instruction": f"q{i}", "response": f"r{i}", "reference_answer": "ref"} for i in range(4)]
    replies = ["ok [RESULT] 4", "great [RESULT] 5", "no verdict here", "too high [RESULT] 9"]
    seen = []

    def fake_generate(prompts):
        seen.extend(prompts)
        return replies

    out = J.run_judge(fake_generate, items, RUBRIC, n_resamples=200)
    agg = out["aggregate"]
    assert len(seen) == 4 and "###Response to evaluate:\nr2" in seen[2]
    assert agg["n"] == 4 and agg["n_parsed"] == 2
    assert agg["parse_failures"] == 2 and agg["parse_failure_rate"] == 0.5
    assert agg["mean"] == 4.5 and 4.0 <= agg["ci_low"] <= agg["ci_high"] <= 5.0
    assert agg["score_counts"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    assert [r["score"] for r in out["per_item"]] == [4, 5, None, None]
    json.dumps(out)


def test_run_judge_all_failures_has_no_mean():
    out = J.run_judge(lambda p: ["nothing"] * len(p), [{"instruction": "q", "response": "r"}], RUBRIC)
    assert out["aggregate"]["mean"] is None and out["aggregate"]["parse_failures"] == 1


def test_run_judge_rejects_bad_items_and_wrong_reply_count():
    with pytest.raises(J.JudgeInputError, match="item 1: field 'response'"):
        J.run_judge(lambda p: p, [{"instruction": "q", "response": "r"}, {"instruction": "q"}], RUBRIC)
    with pytest.raises(J.JudgeInputError, match="1 replies for 2 prompts"):
        J.run_judge(lambda p: ["x"], [{"instruction": "q", "response": "r"}] * 2, RUBRIC)
