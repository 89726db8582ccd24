"""Every supported source schema goes through load -> standardise -> validate -> render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import labkit.config
from labkit.data import (SchemaError, SourceError, check_rows, detect_schema, read_local, read_source,
                         render_text, standardise_row, tokenize_conversation)
from labkit.data.loaders import pick_indices, project_datasets
from labkit.data.standardise import resolve_schema

FIXTURES = Path(__file__).parent / "fixtures"
DATA = FIXTURES / "data"


def clean(rows, schema="auto", column_map=None, source="fixture", policy="fail"):
    schema = resolve_schema(rows, schema, source)
    kept, report = check_rows(rows, lambda r: standardise_row(r, schema, column_map, source), policy=policy,
                              source=source)
    return kept, report


def assert_trains_on_answers(tokenizer, row):
    encoded = tokenize_conversation(tokenizer, row["messages"])
    trained = tokenizer.decode([i for i, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m])
    answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    assert trained == "".join(a + "<|im_end|>" for a in answers)
    assert render_text(tokenizer, row["messages"]).count("<|im_start|>assistant") == len(answers)


def test_finetome_sharegpt(smol_tokenizer):
    rows = read_local(DATA / "finetome.jsonl")
    assert detect_schema(rows[0]) == "sharegpt"
    kept, report = clean(rows, source="mlabonne/FineTome-100k")
    assert report["kept"] == 3
    first, multi, tool = kept
    assert first["messages"] == [{"role": "user", "content": "What is 2+2?"},
                                 {"role": "assistant", "content": "2+2 is 4."}]
    assert (first["source"], first["score"], first["category"]) == ("infini-instruct-top-500k", 4.8, "FineTome-100k")
    assert multi["messages"][0]["role"] == "system" and multi["messages"][-1]["content"] == "Red."  # stripped
    assert [m["role"] for m in tool["messages"]] == ["user", "assistant", "user", "assistant"]
    assert tool["messages"][2]["content"] == 'Tool result:\n{"temp_c": 18}'
    for row in kept:
        assert_trains_on_answers(smol_tokenizer, row)


def test_plain_messages(smol_tokenizer):
    kept, _ = clean(read_local(DATA / "messages.jsonl"))
    assert [row["id"] for row in kept] == ["m1", "m2"]
    for row in kept:
        assert_trains_on_answers(smol_tokenizer, row)


def test_alpaca_from_jsonl_and_parquet(smol_tokenizer, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = read_local(DATA / "alpaca.jsonl")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "alpaca.parquet")
    for source in (DATA / "alpaca.jsonl", tmp_path / "alpaca.parquet"):
        kept, _ = clean(read_local(source), source=str(source))
        assert kept[0]["messages"] == [{"role": "user", "content": "Translate to French.\n\ncat"},
                                       {"role": "assistant", "content": "chat"}]
        assert kept[1]["messages"][0]["content"] == "Say hi."
        assert kept[0]["category"] == "alpaca"
        assert_trains_on_answers(smol_tokenizer, kept[0])


def test_squad_keeps_every_gold_answer(smol_tokenizer):
    rows = read_local(DATA / "squad.json")
    assert detect_schema(rows[0]) == "squad"
    kept, _ = clean(rows)
    row = kept[0]
    assert row["messages"] == [
        {"role": "user", "content": "Context: Paris is the capital of France.\nQuestion: What is the capital of France?"},
        {"role": "assistant", "content": "Paris"}]
    assert row["reference"]["answers"] == ["Paris", "Paris, France"]
    assert (row["id"], row["category"]) == ("sq1", "reading_qa")
    assert_trains_on_answers(smol_tokenizer, row)


def test_finance_instruct_csv(smol_tokenizer):
    rows = read_local(DATA / "finance.csv")
    assert detect_schema(rows[0]) == "finance"
    kept, _ = clean(rows)
    assert [m["role"] for m in kept[0]["messages"]] == ["system", "user", "assistant"]
    assert [m["role"] for m in kept[1]["messages"]] == ["user", "assistant"]  # empty system column skipped
    assert kept[1]["messages"][1]["content"].endswith("\ndepreciation and amortisation.")
    assert_trains_on_answers(smol_tokenizer, kept[0])


def test_custom_column_map(smol_tokenizer):
    rows = read_local(DATA / "custom.jsonl")
    with pytest.raises(SchemaError, match="data.schema=custom"):
        detect_schema(rows[0], "custom.jsonl")
    kept, _ = clean(rows, "custom", {"system": "persona", "user": "prompt", "assistant": "response"})
    assert kept[0]["messages"] == [{"role": "system", "content": "You answer in one word."},
                                   {"role": "user", "content": "Ping?"}, {"role": "assistant", "content": "Pong."}]
    assert len(kept[1]["messages"]) == 2
    assert_trains_on_answers(smol_tokenizer, kept[0])


def test_custom_turn_list_with_role_names():
    rows = [{"dialog": [{"speaker": "customer", "text": "Refund?"}, {"speaker": "agent", "text": "Approved."}]}]
    column_map = {"messages": "dialog", "role_key": "speaker", "content_key": "text",
                  "roles": {"customer": "user", "agent": "assistant"}}
    kept, _ = clean(rows, "custom", column_map)
    assert kept[0]["messages"] == [{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Approved."}]


def test_bad_column_map_is_named():
    with pytest.raises(SchemaError, match="column_map has unknown key"):
        standardise_row({"a": 1}, "custom", {"question": "a"})


def test_hub_source_through_a_stubbed_load_dataset(monkeypatch):
    import datasets

    rows = read_local(DATA / "finetome.jsonl")
    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    source = read_source("mlabonne/FineTome-100k", hub_split="train", limit=2, sample="random", seed=3)
    assert calls == [("mlabonne/FineTome-100k", "train")]
    assert source.test is None and len(source.train) == 2
    assert [r["conversations"] for r in source.train] == [rows[i]["conversations"] for i in pick_indices(3, 2, "random", 3)]


def test_hub_failure_says_what_to_do_offline(monkeypatch):
    import datasets

    def offline(name, split):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceError, match="Offline, use project:NAME or a local file"):
        read_source("someone/some-dataset")


def test_project_source_reads_train_and_test(monkeypatch):
    monkeypatch.setattr(labkit.config, "project_data_dir", lambda: FIXTURES / "project")
    assert project_datasets() == ["arithmetic", "general"]
    source = read_source("project:arithmetic", limit=5)
    assert len(source.train) == 5 and len(source.test) == 6
    assert source.train[0]["id"] == "arithmetic-0000"
    with pytest.raises(SourceError, match="available: arithmetic, general"):
        read_source("project:nope")


def test_sampling_first_and_seeded_random():
    assert pick_indices(10, 3, "first", 0) == [0, 1, 2]
    picked = pick_indices(100, 10, "random", 7)
    assert picked == pick_indices(100, 10, "random", 7) != pick_indices(100, 10, "random", 8)
    assert picked == sorted(picked) and len(set(picked)) == 10


def test_local_file_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_local(tmp_path / "missing.jsonl")
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(SourceError, match="unsupported type"):
        read_local(tmp_path / "rows.txt")
    (tmp_path / "bad.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(SourceError, match="a list of rows"):
        read_local(tmp_path / "bad.json")
