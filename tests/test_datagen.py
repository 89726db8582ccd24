"""The project's own datasets (data/): reproducible, counted, well-formed, correct and truly held out."""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from labkit.datagen import DATASETS, arithmetic, function_calling, general, generate_all, reading_qa
from labkit.datagen.io import read_jsonl
from labkit.datagen.schema import DatasetRowError, check_chat_row, check_mc_row
from labkit.datagen.templates import matching_templates, template_regex

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
CHAT_DATASETS = ("general", "function_calling", "reading_qa", "arithmetic")
MINIMUM_ROWS = {"general": 200, "function_calling": 1000, "reading_qa": 800, "arithmetic": 500,
                "mc_knowledge": 150}


@lru_cache(maxsize=None)
def rows(dataset: str, split: str) -> tuple[dict, ...]:
    return tuple(read_jsonl(DATA / dataset / f"{split}.jsonl"))


def committed_files() -> dict[str, bytes]:
    return {str(p.relative_to(DATA)): p.read_bytes() for p in sorted(DATA.glob("*/*.jsonl"))}


def turn(row: dict, role: str, occurrence: int = 0) -> str:
    return [m["value"] for m in row["conversations"] if m["from"] == role][occurrence]


# ---- reproducibility and the datasheet ---------------------------------------------------------

def test_regenerating_reproduces_the_committed_files_byte_for_byte(tmp_path):
    generate_all(tmp_path)
    regenerated = {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.glob("*/*.jsonl"))}
    committed = committed_files()
    assert sorted(regenerated) == sorted(committed)
    changed = [name for name in committed if committed[name] != regenerated[name]]
    assert not changed, f"regenerate with `python -m labkit.datagen` and commit: {changed}"


def test_the_command_line_is_reproducible_under_another_hash_seed(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run([sys.executable, "-m", "labkit.datagen", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    for name, content in committed_files().items():
        assert (tmp_path / name).read_bytes() == content, name


def readme_counts() -> dict[str, dict[str, int]]:
    text = (DATA / "README.md").read_text(encoding="utf-8")
    section = text.split("## Counts", 1)[1].split("\n## ", 1)[0]
    counts = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in DATASETS:
            counts[cells[0]] = {"train": int(cells[1]), "test": int(cells[2]), "total": int(cells[3])}
    return counts


def test_datasheet_counts_match_the_files():
    counts = readme_counts()
    assert sorted(counts) == sorted(DATASETS)
    for dataset, expected in counts.items():
        actual = {split: len(rows(dataset, split)) if (DATA / dataset / f"{split}.jsonl").exists() else 0
                  for split in ("train", "test")}
        assert actual == {"train": expected["train"], "test": expected["test"]}, dataset
        assert expected["total"] == expected["train"] + expected["test"], dataset


def test_minimum_sizes():
    for dataset, minimum in MINIMUM_ROWS.items():
        splits = ("test",) if dataset == "mc_knowledge" else ("train", "test")
        assert sum(len(rows(dataset, split)) for split in splits) >= minimum, dataset


# ---- schema ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", CHAT_DATASETS)
def test_every_chat_row_has_the_schema_and_ids_are_unique(dataset):
    ids = []
    for split in ("train", "test"):
        for index, row in enumerate(rows(dataset, split)):
            check_chat_row(row, dataset)
            assert row["id"] == f"{dataset}-{split}-{index:05d}"
            ids.append(row["id"])
    assert len(ids) == len(set(ids))


def test_mc_knowledge_rows_have_the_evalset_schema_and_balanced_gold():
    mc = rows("mc_knowledge", "test")
    for index, row in enumerate(mc):
        check_mc_row(row)
        assert row["id"] == f"mc_knowledge-test-{index:05d}" and row["category"] == "mc_knowledge"
    assert len({row["query"] for row in mc}) == len(mc)
    positions = Counter(row["gold"] for row in mc)
    assert sorted(positions) == [0, 1, 2, 3] and max(positions.values()) - min(positions.values()) <= 1
    # the same keys as the shared public evaluation sets use (plus our id and category)
    shared = REPO.parent / "shared" / "data" / "evalsets" / "arc_easy.jsonl"
    if shared.exists():
        with open(shared, encoding="utf-8") as handle:
            assert set(json.loads(handle.readline())) <= set(mc[0])


@pytest.mark.parametrize("bad, message", [
    ({"conversations": [{"from": "gpt", "value": "hi"}]}, "roles"),
    ({"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]}, "roles"),
    ({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": " "}]}, "non-empty"),
    ({"score": 7.0}, "score"),
    ({"category": "other"}, "category"),
])
def test_the_schema_check_rejects_broken_rows(bad, message):
    row = dict(rows("general", "train")[0]) | bad
    with pytest.raises(DatasetRowError, match=message):
        check_chat_row(row, "general")


# ---- general --------------------------------------------------------------------------------

def test_general_has_enough_multi_turn_conversations_and_short_replies():
    everything = rows("general", "train") + rows("general", "test")
    multi = [row for row in everything if sum(m["from"] == "human" for m in row["conversations"]) >= 2]
    assert len(multi) / len(everything) >= 0.20
    assert max(sum(m["from"] == "human" for m in row["conversations"]) for row in everything) <= 3
    assert any(row["conversations"][0]["from"] == "system" for row in everything)
    for row in everything:
        assert row["reference"] == {}
        assert all(len(m["value"].split()) < 120 for m in row["conversations"] if m["from"] == "gpt")


def test_general_split_follows_the_seeded_hash_and_test_is_new():
    train_openings = {turn(row, "human") for row in rows("general", "train")}
    for row in rows("general", "test"):
        assert turn(row, "human") not in train_openings
    share = len(rows("general", "test")) / (len(rows("general", "test")) + len(rows("general", "train")))
    assert 0.08 <= share <= 0.22
    for conversation in general.CONVERSATIONS:
        split = general.split_of(conversation)
        assert conversation.messages[0] in {turn(r, "human") for r in rows("general", split)}


# ---- function_calling -----------------------------------------------------------------------

JSON_TYPES = {"string": str, "integer": int, "number": (int, float)}


@pytest.mark.parametrize("split", ["train", "test"])
def test_function_calls_parse_match_the_reference_and_the_listed_schema(split):
    for row in rows("function_calling", split):
        reply = turn(row, "gpt")
        call = json.loads(reply)
        assert call == row["reference"], row["id"]
        assert reply == json.dumps(call, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        listed = function_calling.tools_in_prompt(turn(row, "system"))
        assert call["name"] in listed and 3 <= len(listed) <= 4 and len(set(listed)) == len(listed)
        schema = function_calling.TOOLS_BY_NAME[call["name"]].schema()["parameters"]
        assert set(schema["required"]) <= set(call["arguments"]) <= set(schema["properties"])
        for name, value in call["arguments"].items():
            spec = schema["properties"][name]
            assert isinstance(value, JSON_TYPES[spec["type"]]), (row["id"], name)
            assert not isinstance(value, bool), (row["id"], name)
            assert value in spec.get("enum", [value]), (row["id"], name)
            if isinstance(value, str):
                assert value in turn(row, "human"), (row["id"], name)


def all_function_templates(split: str) -> list[str]:
    return [template for tool in function_calling.TOOLS for template in tool.templates(split)]


@pytest.mark.parametrize("split, other", [("train", "test"), ("test", "train")])
def test_function_request_phrasings_are_held_out(split, other):
    other_templates = all_function_templates(other)
    assert not set(other_templates) & set(all_function_templates(split))
    for row in rows("function_calling", split):
        request = turn(row, "human")
        tool = function_calling.TOOLS_BY_NAME[row["reference"]["name"]]
        assert matching_templates(request, list(tool.templates(split))), row["id"]
        assert not matching_templates(request, other_templates), row["id"]


def argument_values(split: str) -> dict[str, set]:
    """Values used per pool kind (e.g. 'city', 'money') in a split's references."""
    values: dict[str, set] = {}
    for row in rows("function_calling", split):
        tool = function_calling.TOOLS_BY_NAME[row["reference"]["name"]]
        for name, value in row["reference"]["arguments"].items():
            kind = tool.kinds[name]
            if kind in function_calling.POOLS:
                values.setdefault(kind, set()).add(value)
    return values


def test_function_argument_values_in_test_never_appear_in_train():
    train, test = argument_values("train"), argument_values("test")
    assert {"city", "name", "money", "minutes", "artist", "word"} <= set(test)
    for kind, test_values in test.items():
        assert not test_values & train.get(kind, set()), kind
    train_text = "\n".join(turn(row, "human") for row in rows("function_calling", "train"))
    for kind, test_values in test.items():
        for value in test_values:
            if isinstance(value, str):
                assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", train_text), (kind, value)


# ---- reading_qa -----------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_reading_qa_answers_are_spans_of_their_context(split):
    for row in rows("reading_qa", split):
        reference = row["reference"]
        context, question, answers = reference["context"], reference["question"], reference["answers"]
        assert answers and all(answer and answer in context for answer in answers), row["id"]
        assert turn(row, "gpt") == answers[0]
        assert turn(row, "human") == f"Context: {context}\nQuestion: {question}"
        assert reading_qa.MIN_WORDS <= len(context.split()) <= reading_qa.MAX_WORDS


def question_phrasings(split: str) -> list[str]:
    index = 0 if split == "train" else 1
    return [phrasing for kind in reading_qa.KINDS for pair in kind.questions.values()
            for phrasing in pair[index]]


@pytest.mark.parametrize("split, other", [("train", "test"), ("test", "train")])
def test_reading_qa_question_phrasings_are_held_out(split, other):
    other_phrasings = question_phrasings(other)
    for row in rows("reading_qa", split):
        question = row["reference"]["question"]
        assert matching_templates(question, question_phrasings(split)), row["id"]
        assert not matching_templates(question, other_phrasings), row["id"]


def shared_reading_vocabulary() -> set[str]:
    """Words that may legitimately appear in both splits: template text and common nouns."""
    texts = [literal for kind in reading_qa.KINDS for template in kind.paragraphs
             for literal, _, _, _ in string.Formatter().parse(template)]
    texts += [*reading_qa.REGION_KINDS, *reading_qa.COMPANY_KINDS, *reading_qa.FESTIVAL_THEMES,
              *reading_qa.MONTHS, *reading_qa.WEEKDAYS, "River", "Medal", "Cup", "Festival"]
    return {word for text in texts for word in re.findall(r"[A-Za-z]+", text)}


def test_reading_qa_test_entities_never_appear_in_train():
    train_words = {word for row in rows("reading_qa", "train")
                   for word in re.findall(r"[A-Za-z]+", row["reference"]["context"])}
    test_names = {word for row in rows("reading_qa", "test")
                  for word in re.findall(r"\b[A-Z][a-z]+", row["reference"]["context"])}
    leaked = (test_names & train_words) - shared_reading_vocabulary()
    assert not leaked, f"test names seen in train: {sorted(leaked)}"
    assert len(test_names - shared_reading_vocabulary()) > 100  # the check above is not vacuous


# ---- arithmetic -----------------------------------------------------------------------------

ANSWER = re.compile(r"The answer is (-?\d+(?:\.\d{2})?)\.$")


def solve_from_text(question: str, split: str) -> tuple[arithmetic.Problem, dict[str, int]]:
    """Find the template of ``question`` and read back its numbers (money in cents)."""
    problems = arithmetic.problems(split)
    found = [p for p in problems if template_regex(p.text).fullmatch(question)]
    assert len(found) == 1, question
    problem = found[0]
    fields = template_regex(problem.text).fullmatch(question).groupdict()
    fields.pop("name", None)
    values = {key: int(text.replace(".", "")) for key, text in fields.items()}
    return problem, values


@pytest.mark.parametrize("split", ["train", "test"])
def test_arithmetic_answers_are_right_and_values_stay_in_their_split_range(split):
    for row in rows("arithmetic", split):
        reply, expected = turn(row, "gpt"), row["reference"]["answer"]
        assert "\n" not in reply
        match = ANSWER.search(reply)
        assert match, row["id"]
        assert float(match.group(1)) == pytest.approx(expected, abs=1e-9)
        problem, values = solve_from_text(turn(row, "human"), split)
        raw = problem.solve(values)
        assert arithmetic.answer_value(problem, raw) == expected, row["id"]
        for name, role in problem.roles.items():
            if name in values:
                low, high = arithmetic.RANGES[role][split]
                assert low <= values[name] <= high, (row["id"], name)


def test_arithmetic_templates_and_ranges_are_held_out():
    train_texts = [p.text for p in arithmetic.TRAIN_PROBLEMS]
    test_texts = [p.text for p in arithmetic.TEST_PROBLEMS]
    for row in rows("arithmetic", "train"):
        assert not matching_templates(turn(row, "human"), test_texts), row["id"]
    for row in rows("arithmetic", "test"):
        assert not matching_templates(turn(row, "human"), train_texts), row["id"]
    for role, ranges in arithmetic.RANGES.items():
        (train_low, train_high), (test_low, test_high) = ranges["train"], ranges["test"]
        assert train_high < test_low or test_high < train_low, role
    assert any(isinstance(row["reference"]["answer"], float) for row in rows("arithmetic", "test"))
