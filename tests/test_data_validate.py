"""Malformed rows: every error names the row (index and id) and the field, and says how to fix it."""

from __future__ import annotations

import pytest

from labkit.data import DataValidationError, check_rows, standardise_row


def sharegpt(*turns, **extra):
    return {"conversations": [{"from": role, "value": value} for role, value in turns], **extra}


GOOD = sharegpt(("human", "Hi"), ("gpt", "Hello"), id="ok-1")


def failure(bad_row, schema="sharegpt", position=1) -> str:
    rows = [GOOD] * position + [bad_row]
    with pytest.raises(DataValidationError) as caught:
        check_rows(rows, lambda r: standardise_row(r, schema), policy="fail", source="train.jsonl")
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


@pytest.mark.parametrize("row, field, words", [
    (sharegpt(("system", "S"), ("human", "Hi"), ("gpt", "   ")), "conversations[2].value", "content is empty"),
    (sharegpt(("human", "Hi"), ("gpt", 42)), "conversations[1].value", "is a int, not text"),
    (sharegpt(("human", "Hi"), ("gpt", None)), "conversations[1].value", "not text"),
    (sharegpt(("human", "Hi"), ("narrator", "Once")), "conversations[1].from", "role 'narrator' is not known"),
    (sharegpt(("human", "Hi"), ("human", "Hello?")), "conversations[1].from", "expected assistant"),
    (sharegpt(("gpt", "Hi"), ("human", "Hello?")), "conversations[0].from", "expected user"),
    (sharegpt(("human", "Hi"), ("system", "S"), ("gpt", "x")), "conversations[1].from", "system message may only"),
    (sharegpt(("system", "S"), ("human", "Hi")), "conversations", "no assistant turn"),
    (sharegpt(("human", "Hi"), ("gpt", "Yo"), ("human", "And?")), "conversations[2].from", "ends with a user turn"),
    ({"conversations": "Hi there"}, "conversations", "must be a non-empty list"),
    ({"conversations": []}, "conversations", "must be a non-empty list"),
    ({"conversations": ["Hi", "Hello"]}, "conversations[0]", "must be an object"),
    ({"conversations": [{"value": "Hi"}]}, "conversations[0]", "has no 'role' key"),
])
def test_fail_policy_names_row_and_field(row, field, words):
    message = failure({**row, "id": "bad-7"}, position=3)
    assert message.startswith(f"row 3 (id 'bad-7') of train.jsonl: {field}: ")
    assert words in message
    assert "Fix:" in message and "data.invalid=drop" in message


def test_row_without_id_is_named_by_index():
    message = failure(sharegpt(("human", ""), ("gpt", "x")), position=5)
    assert message.startswith("row 5 of train.jsonl: conversations[0].value: content is empty")


def test_column_schemas_name_their_columns():
    assert "output: content is empty" in failure({"instruction": "Do it", "output": ""}, schema="alpaca", position=0)
    assert "user: content is a NoneType" in failure({"user": None, "assistant": "A"}, schema="finance", position=0)
    assert "answers.text: has no gold answer" in failure(
        {"id": "q9", "context": "C", "question": "Q", "answers": {"text": [], "answer_start": []}}, schema="squad", position=0)


def test_drop_policy_keeps_good_rows_and_reports_problems():
    rows = [GOOD,
            sharegpt(("human", "Hi"), ("gpt", ""), id="empty-1"),
            sharegpt(("human", "Hi"), ("robot", "x"), id="role-1"),
            GOOD,
            sharegpt(("human", ""), ("gpt", ""), id="empty-2"),
            {"conversations": None}]
    kept, report = check_rows(rows, lambda r: standardise_row(r, "sharegpt"), policy="drop", source="hub")
    assert [r["id"] for r in kept] == ["ok-1", "ok-1"]
    assert "_paths" not in kept[0]
    assert (report["rows"], report["kept"], report["dropped"]) == (6, 2, 4)
    assert report["problems"] == {"empty_content": 3, "unknown_role": 1, "not_a_list": 1}
    first = report["examples"][0]
    assert (first["row"], first["id"], first["field"], first["kind"]) == (1, "empty-1", "conversations[1].value",
                                                                          "empty_content")
    assert report["examples"][-1]["row"] == 5 and report["examples"][-1]["id"] is None


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="data.invalid='ignore'"):
        check_rows([GOOD], lambda r: standardise_row(r, "sharegpt"), policy="ignore")
