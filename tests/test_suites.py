"""Evaluation suites: each hub conversion on a fixture in the hub's own schema, the hub path through `datasets`
reading a local copy (no network), format detection for --data, the config, the CLI and the retention verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.config import ConfigError, load_config
from labkit.eval.suites import SUITES, SuiteError, load_suite
from labkit.runs import write_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "suites"
FIXTURE_OF = {"arc_challenge": "arc", "arc_easy": "arc", "hellaswag": "hellaswag", "piqa": "piqa",
              "openbookqa": "openbookqa", "siqa": "siqa", "mmlu": "mmlu", "squad": "squad"}
NOT_A_FILE = "fabricated/hub-dataset"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]


def _convert(suite: str) -> list[dict]:
    return SUITES[suite].to_items(_rows(FIXTURE_OF[suite]))


# ----------------------------------------------------------------- conversions (lm-eval 0.4.13's prompts)

def test_arc_uses_question_answer_prompt_and_label_index():
    items = _convert("arc_challenge")
    assert items[0]["context"] == "Question: Which gas do green plants take in from the air to make food?\nAnswer:"
    assert items[0]["choices"][items[0]["gold"]] == "carbon dioxide" and items[0]["id"] == "Fixture_ARC_1"
    assert [i["gold"] for i in items] == [1, 1, 0]   # numeric labels ("1", "2", "3") and five choices work too
    assert len(items[2]["choices"]) == 5


def test_openbookqa_prompt_is_the_bare_stem_and_the_answer_key_is_stripped():
    items = _convert("openbookqa")
    assert items[0]["context"] == "A magnet will stick to" and items[0]["gold"] == 1
    assert items[1]["gold"] == 1   # answerKey " B" (leading space): the harness strips it


def test_hellaswag_preprocesses_like_the_harness():
    items = _convert("hellaswag")
    assert items[0]["context"] == "Making tea: A woman fills a kettle with water. She"
    assert items[0]["choices"][1] == "throws the kettle. out of the window."
    assert items[1]["context"] == "Home and Garden: How to water a plant. Check the soil. Then"
    assert items[1]["choices"][:3] == ["water the roots slowly.", "eat the plant.", " Throw the pot away."]
    assert [i["gold"] for i in items] == [0, 0] and items[0]["id"] == "4"


def test_piqa_siqa_and_mmlu_prompts_choices_and_gold():
    piqa = _convert("piqa")
    assert piqa[1]["context"] == "Question: To dry wet shoes quickly,\nAnswer:" and piqa[1]["gold"] == 1
    siqa = _convert("siqa")
    assert siqa[0]["context"] == ("Q: Jordan forgot an umbrella and walked home in the rain. How would Jordan feel "
                                  "afterwards?\nA:")
    assert siqa[0]["choices"] == ["wet and cold", "dry and warm", "very sleepy"] and [s["gold"] for s in siqa] == [0, 2]
    mmlu = _convert("mmlu")
    assert mmlu[0]["context"] == ("The following are multiple choice questions (with answers) about elementary "
                                  "mathematics.\n\nWhat is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:")
    assert mmlu[0]["choices"] == ["A", "B", "C", "D"] and [m["gold"] for m in mmlu] == [1, 2]


def test_squad_becomes_a_reading_qa_chat_row_with_every_gold_answer():
    rows = _convert("squad")
    assert rows[0]["messages"][0] == {"role": "system", "content": "Answer the question with a short span copied "
                                                                   "exactly from the context."}
    assert rows[0]["messages"][1]["content"].startswith("Context: Oxlmere lies") and \
        rows[0]["messages"][1]["content"].endswith("Question: Which river bends near Oxlmere?")
    assert rows[1]["reference"]["answers"] == ["1638", "in 1638"] and rows[1]["id"] == "fx-sq-2"


def test_a_malformed_hub_row_names_the_row_and_the_field(tmp_path):
    rows = [*_rows("piqa"), {"goal": "g", "sol1": "a", "label": 0}]
    with pytest.raises(SuiteError, match=r"PIQA row 2: missing field 'sol2'"):
        load_suite("piqa", None, 0, data=_write(tmp_path, rows))
    rows[2].update(sol2="b", label=2)
    with pytest.raises(SuiteError, match=r"PIQA row 2: field 'gold' must be an integer index in 0..1, got 2"):
        load_suite("piqa", None, 0, data=_write(tmp_path, rows))


def _write(folder: Path, rows: list[dict], name: str = "rows.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / name, rows)
    return folder / name


# ----------------------------------------------------------------- the hub path, on a local copy

def test_every_hub_suite_is_pinned_to_a_full_commit():
    import re

    unpinned = [s.name for s in SUITES.values() if s.hub_id and not re.fullmatch(r"[0-9a-f]{40}", s.revision or "")]
    assert unpinned == [], f"suites that would read the hub's default branch: {unpinned}"


def test_hub_path_reads_through_datasets_with_pinned_revision_and_a_seeded_subset():
    from datasets import load_dataset

    calls = []

    def local_hub(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return load_dataset("json", data_files=str(FIXTURES / "arc.jsonl"), split="train")

    whole = load_suite("arc_challenge", None, 0, load_dataset=local_hub)
    assert calls == [("allenai/ai2_arc", "ARC-Challenge", "test", SUITES["arc_challenge"].revision)]
    assert [i["id"] for i in whole.items] == ["Fixture_ARC_1", "Fixture_ARC_2", "Fixture_ARC_3"]
    assert whole.category == "arc_challenge" and "allenai/ai2_arc" in whole.source
    picks = [[i["id"] for i in load_suite("arc_challenge", 2, seed, load_dataset=local_hub).items]
             for seed in (0, 0)]
    assert picks[0] == picks[1] and len(picks[0]) == 2   # seeded: the same items every time, in file order
    first = load_suite("arc_challenge", 2, 0, first=True, load_dataset=local_hub).items
    assert [i["id"] for i in first] == ["Fixture_ARC_1", "Fixture_ARC_2"]


def test_a_failed_download_says_how_to_work_offline():
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    with pytest.raises(SuiteError, match=r"--suite squad --data FILE"):
        load_suite("squad", None, 0, load_dataset=offline)


def test_data_file_format_is_detected(tmp_path):
    hub = load_suite("piqa", None, 0, data=FIXTURES / "piqa.jsonl", first=True)
    mc_rows = [{"query": i["query"], "choices": i["choices"], "gold": i["gold"]} for i in hub.items]
    mc = load_suite("piqa", None, 0, data=_write(tmp_path, mc_rows), first=True)
    assert [i["choices"] for i in mc.items] == [i["choices"] for i in hub.items]
    assert "context" not in mc.items[0]   # labkit's format: query + "\nAnswer:" (the shared evalsets' convention)
    with pytest.raises(SuiteError, match=r"columns \['foo'\]; expected .*query, choices, gold.*goal, sol1, sol2"):
        load_suite("piqa", None, 0, data=_write(tmp_path, [{"foo": 1}], "bad.jsonl"))
    with pytest.raises(SuiteError, match="generative suite"):
        load_suite("squad", None, 0, data=_write(tmp_path, mc_rows, "mc.jsonl"))


def test_a_saved_dataset_folder_and_official_squad_json_are_read(tmp_path):
    from datasets import load_dataset

    load_dataset("json", data_files=str(FIXTURES / "hellaswag.jsonl"), split="train").save_to_disk(tmp_path / "hs")
    assert [i["gold"] for i in load_suite("hellaswag", None, 0, data=tmp_path / "hs").items] == [0, 0]
    official = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "Bo is 7.", "qas": [
        {"id": "q1", "question": "How old is Bo?", "answers": [{"text": "7", "answer_start": 6}]}]}]}]}
    (tmp_path / "dev-v1.1.json").write_text(json.dumps(official))
    rows = load_suite("squad", None, 0, data=tmp_path / "dev-v1.1.json").items
    assert rows[0]["reference"]["answers"] == ["7"] and rows[0]["id"] == "q1"


def test_custom_suite_reads_a_local_mc_file(tmp_path):
    path = _write(tmp_path, [{"query": "Question: 1+1?", "choices": ["2", "3"], "gold": 0}], "my_mc.jsonl")
    data = load_suite(f"custom:{path}", None, 0)
    assert data.category == "custom-my_mc" and data.items[0]["id"] == "my_mc-00000"


# ----------------------------------------------------------------- configuration

def test_suite_setting_is_a_list_with_per_suite_limits():
    cfg = load_config("smoke", ["eval.suite=demo,arc_challenge", "eval.limits={arc_challenge: 7}", "eval.limit=3"])
    assert cfg.eval.suite == ["demo", "arc_challenge"]
    assert cfg.eval.limit_for("arc_challenge") == 7 and cfg.eval.limit_for("demo") == 3
    assert load_config("smoke", ["eval.suite=custom:x.jsonl"]).eval.suite == ["custom:x.jsonl"]
    assert load_config("smoke", {"eval.suite": "squad"}).eval.suite == ["squad"]   # old single-name configs still read


@pytest.mark.parametrize("override, message", [
    ("eval.suite=arc_chalenge", "did you mean arc_challenge"),
    ("eval.suite=custom:", "known suites are demo, arc_challenge"),
    ("eval.suite=demo,demo", "listed twice"),
    ("eval.limits={squad: 5}", "positive integer limits for suites of eval.suite"),
])
def test_bad_suite_settings_fail_with_one_clear_line(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [override])


def test_registry_serves_the_config_names_with_harness_splits():
    from labkit.config import EVAL_SUITES

    assert tuple(SUITES) == EVAL_SUITES
    assert {n: SUITES[n].split for n in ("arc_challenge", "hellaswag", "piqa", "openbookqa", "siqa", "mmlu")} == {
        "arc_challenge": "test", "hellaswag": "validation", "piqa": "validation", "openbookqa": "test",
        "siqa": "validation", "mmlu": "test"}


# ----------------------------------------------------------------- the CLI and a run's evaluation (tiny model)

def _cli(capsys, *args: str) -> tuple[int, dict | str]:
    from labkit.cli import main

    code = main(["eval", "--preset", "smoke", "--set", f"data.sources={NOT_A_FILE}", "--model", "tiny-random-llama",
                 *args])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]) if code == 0 else err


def test_cli_scores_a_hub_schema_file_of_an_mc_suite(capsys, tiny_model_path, one_thread):
    code, result = _cli(capsys, "--suite", "piqa", "--data", str(FIXTURES / "piqa.jsonl"), "--limit", "1", "--json")
    assert code == 0 and result["n"] == 1 and result["suite"] == "piqa"
    for name in ("acc", "acc_norm"):
        low, high = result[f"{name}_ci"]
        assert 0 <= low <= result[name] <= high <= 1


def test_cli_scores_squad_in_the_hub_schema_with_exact_match_and_f1(capsys, tiny_model_path, one_thread):
    code, result = _cli(capsys, "--suite", "squad", "--data", str(FIXTURES / "squad.jsonl"), "--set",
                        "eval.max_new_tokens=4", "--json")
    assert code == 0 and result["n"] == 2
    for name in ("exact_match", "f1"):
        low, high = result[f"{name}_ci"]
        assert 0 <= low <= result[name] <= high <= 1


def test_cli_refuses_demo_and_unknown_suites(capsys):
    code, err = _cli(capsys, "--suite", "demo", "--json")
    assert code == 2 and "not a hub suite" in err and "labkit eval --preset P --run NAME" in err
    code, err = _cli(capsys, "--suite", "arc", "--json")
    assert code == 2 and "arc_challenge" in err


def test_a_run_evaluates_hub_suites_and_the_verdict_names_the_knowledge_cost(tmp_path, monkeypatch, tiny_model_path,
                                                                           one_thread):
    import datasets

    from labkit.eval.evaluate import run_evaluation, verdict
    from labkit.runs import Run
    from test_evaluate import save_random_adapter

    real_load = datasets.load_dataset
    files = {"allenai/ai2_arc": "arc", "rajpurkar/squad": "squad"}
    monkeypatch.setattr(datasets, "load_dataset", lambda path, *a, **k: real_load(
        "json", data_files=str(FIXTURES / f"{files[path]}.jsonl"), split="train"))
    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE], "eval.suite": ["arc_challenge", "squad"],
                                "eval.max_new_tokens": 4, "eval.bootstrap": 100})
    run = Run.open("suites", cfg, root=tmp_path)
    save_random_adapter(run.path("adapter"))
    summary = run_evaluation(cfg, run, progress=False)
    assert set(summary["results"]["tuned"]) == {"arc_challenge", "squad"}
    assert set(summary["results"]["base"]["arc_challenge"]["metrics"]) == {"acc", "acc_norm"}
    assert set(summary["comparison"]["squad"]) == {"f1", "exact_match"}
    assert summary["suite"] == ["arc_challenge", "squad"] and "allenai/ai2_arc" in summary["sources"]["arc_challenge"]
    text = verdict(summary)
    assert "ARC-Challenge: " in text and "(multiple-choice acc_norm)" in text and "SQuAD v1.1" in text


def test_verdict_names_a_benchmark_cost_in_points():
    from labkit.eval.evaluate import build_summary, verdict
    from labkit.runs import Run

    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE], "eval.suite": ["arc_challenge"]})
    base = [1.0] * 67 + [0.0] * 33
    tuned = [1.0] * 51 + [0.0] * 49
    records = {tag: {"arc_challenge": [{"id": str(i), "acc_norm": v, "acc": v} for i, v in enumerate(values)]}
               for tag, values in (("base", base), ("tuned", tuned))}
    text = verdict(build_summary(records, cfg, Run("fab", Path("unused")), [], {}))
    assert "ARC-Challenge: 67.0% -> 51.0% (multiple-choice acc_norm): fine-tuning cost 16.0 points of general " \
           "knowledge" in text


def test_retention_table_keeps_the_knowledge_benchmarks_only():
    from labkit.eval import knowledge_line, retention_table
    from labkit.eval.evaluate import build_summary
    from labkit.runs import Run

    cfg = load_config("smoke", {"data.sources": [NOT_A_FILE], "eval.suite": ["demo", "mmlu"]})
    flips = {"base": [1.0, 0.0] * 20, "tuned": [0.0, 1.0] * 20}
    records = {tag: {"mmlu": [{"id": str(i), "acc_norm": v, "acc": v} for i, v in enumerate(values)],
                     "mc_knowledge": [{"id": str(i), "acc_norm": v, "acc": v} for i, v in enumerate(values)],
                     "arithmetic": [{"id": str(i), "accuracy": v} for i, v in enumerate(values)]}
               for tag, values in flips.items()}
    summary = build_summary(records, cfg, Run("fab", Path("unused")), [], {})
    table = retention_table(summary)
    assert set(table["benchmark"]) == {"MMLU", "general knowledge (data/mc_knowledge)"} and len(table) == 4
    assert table["tuned is"].eq("unclear").all() and table["change [95% CI]"].str.startswith("+0.0 pts").all()
    lines = knowledge_line(summary).splitlines()
    assert lines[0].startswith("Cost: no measurable loss of general knowledge")
    assert lines[1].startswith("MMLU: 50.0% -> 50.0% (multiple-choice acc_norm): no measurable change")
