"""Filters, splits and the whole prepare stage on small fixtures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import labkit.config
from labkit.config import load_config
from labkit.data import (PreparedDataMissing, dedupe, filter_min_score, filter_token_length, length_stats,
                         load_lengths, load_prepared, masked_example_html, plot_length_histograms, prepare_data,
                         show_masked_example, split_rows)
from labkit.data.filters import conversation_key
from labkit.runs import Run, read_json

FIXTURES = Path(__file__).parent / "fixtures"


def row(i, category="a", text=None, score=None):
    content = text or f"question {i}"
    return {"id": f"{category}-{i}", "category": category, "score": score,
            "messages": [{"role": "user", "content": content}, {"role": "assistant", "content": f"answer to {content}"}]}


def test_split_is_deterministic_and_stratified():
    rows = [row(i, "a") for i in range(40)] + [row(i, "b") for i in range(10)] + [row(i, "c") for i in range(3)]
    kept, held = split_rows(rows, 0.2, seed=1)
    again_kept, again_held = split_rows(rows, 0.2, seed=1)
    assert [r["id"] for r in held] == [r["id"] for r in again_held]
    assert Counter(r["category"] for r in held) == {"a": 8, "b": 2, "c": 1}
    assert len(kept) + len(held) == len(rows) and not {r["id"] for r in kept} & {r["id"] for r in held}
    assert [r["id"] for r in split_rows(rows, 0.2, seed=2)[1]] != [r["id"] for r in held]
    # adding rows of one category leaves the other categories' hold-out unchanged
    more = rows + [row(i, "a") for i in range(40, 60)]
    assert [r["id"] for r in split_rows(more, 0.2, seed=1)[1] if r["category"] != "a"] == \
        [r["id"] for r in held if r["category"] != "a"]


def test_split_falls_back_to_source_and_zero_fraction():
    rows = [{**row(i, "same"), "source": "s1" if i < 10 else "s2"} for i in range(20)]
    _, held = split_rows(rows, 0.1, seed=0)
    assert Counter(r["source"] for r in held) == {"s1": 1, "s2": 1}
    assert split_rows(rows, 0.0, seed=0) == (rows, [])


def test_dedupe_exact_conversations_and_excluded_keys():
    rows = [row(1), row(2), {**row(1), "id": "copy", "category": "other"}, row(3)]
    kept, dropped = dedupe(rows)
    assert [r["id"] for r in kept] == ["a-1", "a-2", "a-3"] and dropped == 1
    kept, dropped = dedupe(rows, seen={conversation_key(row(2))})
    assert [r["id"] for r in kept] == ["a-1", "a-3"] and dropped == 2


def test_score_filter_keeps_unscored_rows():
    rows = [row(1, score=4.5), row(2, score=3.0), row(3), row(4, score="4.0")]
    kept, dropped = filter_min_score(rows, 4.0)
    assert [r["id"] for r in kept] == ["a-1", "a-3", "a-4"] and dropped == 1
    assert filter_min_score(rows, None) == (rows, 0)


def test_token_length_filter():
    rows = [row(i) for i in range(4)]
    kept, lengths, counts = filter_token_length(rows, [5, 50, 500, 20], min_tokens=10, max_tokens=100)
    assert [r["id"] for r in kept] == ["a-1", "a-3"] and lengths == [50, 20]
    assert counts == {"too_short": 1, "too_long": 1}


def test_length_stats():
    stats = length_stats(list(range(1, 101)), max_length=90)
    assert (stats["count"], stats["min"], stats["max"], stats["p50"]) == (100, 1, 100, 50)
    assert stats["truncation_rate"] == 0.1


@pytest.fixture
def project_fixtures(monkeypatch):
    monkeypatch.setattr(labkit.config, "project_data_dir", lambda: FIXTURES / "project")


@pytest.fixture
def local_chat(tmp_path):
    """A local file in the plain ``messages`` schema with no test split of its own."""
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": row(i, "x")["messages"]}) + "\n" for i in range(6)))
    return path


def fixture_config(extra_source=None, **overrides):
    sources = ",".join(["project:general", "project:arithmetic"] + ([str(extra_source)] if extra_source else []))
    return load_config("smoke", {"data.sources": f"[{sources}]", "data.limit": "None", **overrides})


def test_prepare_data_writes_splits_and_stats(project_fixtures, local_chat, smol_tokenizer):
    cfg = fixture_config(local_chat, **{"data.val_fraction": "0.1", "data.test_fraction": "0.34"})
    run = Run.open("prep", cfg)
    stats = prepare_data(cfg, run, smol_tokenizer)
    splits = {name: load_prepared(run, name) for name in ("train", "validation", "test")}
    for rows in splits.values():
        assert all(set(r) == {"id", "category", "source", "messages", "reference"} for r in rows)
    ids = [r["id"] for rows in splits.values() for r in rows]
    assert len(ids) == len(set(ids))
    # the project test files are the test split; the local file gets a carved-out test row
    assert Counter(r["category"] for r in splits["test"]) == {"general": 6, "arithmetic": 6, "chat": 2}
    assert {"general-dup", "general-leak"}.isdisjoint(ids)            # duplicate and test-overlap rows dropped
    assert stats["filtered"]["duplicates"] == 0 and stats["filtered"]["train_test_overlap"] == 2
    assert stats["splits"]["validation"]["by_category"] == {"arithmetic": 3, "chat": 1, "general": 3}
    assert stats["splits"]["train"]["rows"] == len(splits["train"])
    assert 0 < stats["splits"]["train"]["trainable_share"] < 1
    assert stats["end_of_turn"] == "<|im_end|>" and stats["no_trainable_token"]["count"] == 0
    assert read_json(run.path("data", "stats.json")) == stats
    report = read_json(run.path("data", "validation_report.json"))
    assert report["kept"] == report["rows"] == 30 + 6 + 32 + 6 + 6 and report["policy"] == "fail"
    lengths = load_lengths(run, "train")
    assert sum(map(len, lengths.values())) == len(splits["train"])


def test_prepare_counts_rows_left_without_trainable_tokens(project_fixtures, smol_tokenizer):
    cfg = fixture_config(**{"data.max_seq_length": "40"})
    with pytest.warns(UserWarning, match="no trainable token after truncation"):
        stats = prepare_data(cfg, Run.open("short", cfg), smol_tokenizer)
    assert stats["no_trainable_token"]["count"] > 0
    assert stats["splits"]["train"]["tokens"]["truncation_rate"] > 0


def test_prepare_filters_by_score_and_length(project_fixtures, smol_tokenizer):
    cfg = fixture_config(**{"data.min_score": "4.5", "data.max_tokens": "60"})
    stats = prepare_data(cfg, Run.open("filtered", cfg), smol_tokenizer)
    assert stats["filtered"]["low_score"] > 0 and stats["filtered"]["too_long"] > 0
    assert stats["splits"]["train"]["tokens"]["max"] <= 60


def test_prepare_refuses_to_filter_everything_away(project_fixtures, smol_tokenizer):
    cfg = fixture_config(**{"data.max_tokens": "5"})
    with pytest.raises(ValueError, match="no training rows are left after filtering.*too_long"):
        prepare_data(cfg, Run.open("nothing", cfg), smol_tokenizer)


def test_drop_policy_in_prepare_reports_bad_rows(project_fixtures, smol_tokenizer, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]}\n'
                   '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}\n')
    cfg = load_config("smoke", {"data.sources": f"[{bad}]", "data.invalid": "drop"})
    run = Run.open("drop", cfg)
    stats = prepare_data(cfg, run, smol_tokenizer)
    assert stats["validation"]["dropped"] == 1 and stats["validation"]["problems"] == {"empty_content": 1}
    report = read_json(run.path("data", "validation_report.json"))
    assert report["sources"][0]["examples"][0]["field"] == "conversations[1].value"


def test_load_prepared_without_prepare_says_what_to_run():
    run = Run.open("empty")
    with pytest.raises(PreparedDataMissing, match="run notebook 01 or `labkit prepare --run empty` first"):
        load_prepared(run, "train")
    with pytest.raises(ValueError, match="split 'dev' is unknown"):
        load_prepared(run, "dev")


def test_masked_example_views(smol_tokenizer):
    example = row(1, text="2+2?")
    text = show_masked_example(smol_tokenizer, example)
    assert "⟦answer to 2+2?<|im_end|>⟧" in text and "⟦" not in text.split("assistant\n")[0].split("\n", 2)[2]
    assert "tokens trained" in text
    page = masked_example_html(smol_tokenizer, example)
    assert "background:#c8f7c5" in page and "&lt;|im_start|&gt;" in page


def test_length_histograms_figure():
    figure = plot_length_histograms({"a": [10, 20, 300], "b": [5, 6]}, max_length=256)
    titles = [axis.get_title(loc="left") for axis in figure.axes]
    assert titles[0] == "a: 3 rows, 33.3% longer than max_seq_length=256"
    assert len(figure.axes) == 2


def test_a_fixed_validation_set_is_the_same_for_every_limit_and_seed(project_fixtures, smol_tokenizer):
    seen = []
    for limit, seed in ((5, 1), (20, 1), (20, 2)):
        cfg = fixture_config(**{"data.val_rows": "3", "data.limit": str(limit), "train.seed": str(seed),
                                "data.sample": "random"})
        run = Run.open(f"fixed-{limit}-{seed}", cfg)
        stats = prepare_data(cfg, run, smol_tokenizer)
        validation, train = load_prepared(run, "validation"), load_prepared(run, "train")
        seen.append([r["id"] for r in validation])
        assert {r["id"] for r in train}.isdisjoint(seen[-1])          # never trained on
        assert stats["validation_set"].startswith("fixed: data.val_rows=3")
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 6      # 3 rows of each of the two sources
    other = fixture_config(**{"data.val_rows": "3", "data.val_seed": "9"})
    assert [r["id"] for r in load_prepared(_prepared(other, smol_tokenizer), "validation")] != seen[0]


def _prepared(cfg, tokenizer):
    run = Run.open("other", cfg)
    prepare_data(cfg, run, tokenizer)
    return run
