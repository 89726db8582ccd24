"""Hub rows -> labkit items, one function per suite, each copying lm-evaluation-harness 0.4.13's task YAML.

Multiple-choice items are ``{id, query, context, choices, gold}``: ``context`` is the harness's ``doc_to_text``
verbatim (what the model reads before each choice; every choice is scored as ``" " + choice``, the harness's
default ``target_delimiter``), ``query`` the bare question for tables. SQuAD rows become the project's chat rows
(``messages`` + ``reference.answers``), generated and scored like the demo's reading-QA category.
Hand-written rather than running the harness's Jinja templates: the harness is a benchmark-only dependency, and
each template is one line (quoted above its function).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from labkit.eval.mcscore import MCDataError, validate_item

SQUAD_SYSTEM = "Answer the question with a short span copied exactly from the context."  # data/reading_qa's prompt


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    try:
        return row[name]
    except (KeyError, TypeError):
        raise MCDataError(f"{where}: missing field {name!r}; is this file in the suite's hub schema?") from None


def _mc(where: str, row_id: Any, query: str, context: str, choices: list, gold: Any) -> dict:
    item = validate_item({"query": query, "context": context, "choices": choices, "gold": gold}, where)
    return {"id": str(row_id), **item}


def _labelled(row: Mapping, where: str, key_field: str = "answerKey") -> tuple[list[str], int]:
    """choices.text and the index of the answer key in choices.label (ARC, OpenBookQA)."""
    choices = _field(row, "choices", where)
    try:
        labels, texts = list(choices["label"]), list(choices["text"])
    except (KeyError, TypeError):
        raise MCDataError(f"{where}: field 'choices' must be {{text: [...], label: [...]}}") from None
    key = str(_field(row, key_field, where)).lstrip()
    if key not in labels:
        raise MCDataError(f"{where}: {key_field} {key!r} is not one of the labels {labels}")
    return texts, labels.index(key)


def arc(rows: list[Mapping]) -> list[dict]:
    """doc_to_text "Question: {{question}}\\nAnswer:", choices choices.text, target choices.label.index(answerKey)."""
    return _labelled_items(rows, "ARC", "question", lambda q: (f"Question: {q}", f"Question: {q}\nAnswer:"))


def openbookqa(rows: list[Mapping]) -> list[dict]:
    """doc_to_text question_stem, choices choices.text, target choices.label.index(answerKey.lstrip())."""
    return _labelled_items(rows, "OpenBookQA", "question_stem", lambda stem: (stem, stem))


def _labelled_items(rows: list[Mapping], suite: str, stem_field: str, prompts) -> list[dict]:
    """Items of a suite whose choices are ``{text, label}`` lists and whose answer is a label (ARC, OpenBookQA);
    ``prompts(stem)`` gives the item's (question, prompt) texts."""
    items = []
    for i, row in enumerate(rows):
        where = f"{suite} row {i}"
        stem = _field(row, stem_field, where)
        texts, gold = _labelled(row, where)
        items.append(_mc(where, row.get("id", i), *prompts(stem), texts, gold))
    return items


def _hellaswag_clean(text: str) -> str:
    """lm_eval/tasks/hellaswag/utils.py ``preprocess``: WikiHow's bracketed artefacts removed."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(rows: list[Mapping]) -> list[dict]:
    """process_docs: query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()), choices =
    preprocess(endings), gold = int(label); doc_to_text "{{query}}"."""
    items = []
    for i, row in enumerate(rows):
        where = f"HellaSwag row {i}"
        ctx = _field(row, "ctx_a", where) + " " + _field(row, "ctx_b", where).capitalize()
        query = _hellaswag_clean(_field(row, "activity_label", where) + ": " + ctx)
        choices = [_hellaswag_clean(e) for e in _field(row, "endings", where)]
        items.append(_mc(where, row.get("ind", i), query, query, choices, _int(row, "label", where)))
    return items


def _int(row: Mapping, name: str, where: str, offset: int = 0) -> int:
    value = _field(row, name, where)
    try:
        return int(value) - offset
    except (TypeError, ValueError):
        raise MCDataError(f"{where}: field {name!r} must be an integer label, got {value!r}") from None


def piqa(rows: list[Mapping]) -> list[dict]:
    """doc_to_text "Question: {{goal}}\\nAnswer:", choices [sol1, sol2], target label."""
    items = []
    for i, row in enumerate(rows):
        where = f"PIQA row {i}"
        goal = _field(row, "goal", where)
        choices = [_field(row, "sol1", where), _field(row, "sol2", where)]
        items.append(_mc(where, i, f"Question: {goal}", f"Question: {goal}\nAnswer:", choices,
                         _int(row, "label", where)))
    return items


def siqa(rows: list[Mapping]) -> list[dict]:
    """doc_to_text "Q: {{context}} {{question}}\\nA:", choices [answerA, answerB, answerC], target label - 1."""
    items = []
    for i, row in enumerate(rows):
        where = f"Social IQa row {i}"
        context, question = _field(row, "context", where), _field(row, "question", where)
        choices = [_field(row, f"answer{letter}", where) for letter in "ABC"]
        items.append(_mc(where, i, f"{context} {question}", f"Q: {context} {question}\nA:", choices,
                         _int(row, "label", where, offset=1)))
    return items


def mmlu(rows: list[Mapping]) -> list[dict]:
    """Per subject (mmlu_<subject>.yaml): description "The following are multiple choice questions (with answers)
    about <subject, underscores as spaces>.\\n\\n" before doc_to_text "{{question.strip()}}\\nA. ..\\nB. ..\\nC. ..
    \\nD. ..\\nAnswer:"; choices ["A", "B", "C", "D"], target answer. The harness's ``mmlu`` group weighs subjects
    by size, so one mean over the rows of the ``all`` configuration equals it."""
    items = []
    for i, row in enumerate(rows):
        where = f"MMLU row {i}"
        subject, question = str(_field(row, "subject", where)), str(_field(row, "question", where)).strip()
        options = list(_field(row, "choices", where))
        if len(options) != 4:
            raise MCDataError(f"{where}: field 'choices' must hold 4 options, got {len(options)}")
        topic = subject.replace("_", " ")
        description = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
        body = "\n".join(f"{letter}. {option}" for letter, option in zip("ABCD", options))
        items.append(_mc(where, f"{subject}-{i}", question, f"{description}{question}\n{body}\nAnswer:",
                         list("ABCD"), _int(row, "answer", where)))
    return items


def squad(rows: list[Mapping]) -> list[dict]:
    """SQuAD v1.1 rows (id, title, context, question, answers{text, answer_start}) -> chat rows with the system
    prompt of the project's reading-QA data, through the data stage's own SQuAD conversion."""
    from labkit.data.problems import RowProblem
    from labkit.data.standardise import PATHS, standardise_row

    out = []
    for i, row in enumerate(rows):
        try:
            converted = standardise_row(row, "squad", source="squad")
        except RowProblem as problem:
            raise MCDataError(f"SQuAD row {i} (id {row.get('id')!r}): {problem}") from None
        converted.pop(PATHS, None)
        converted["messages"] = [{"role": "system", "content": SQUAD_SYSTEM}, *converted["messages"]]
        converted.update(id=str(row.get("id", i)), category="squad")
        out.append(converted)
    return out
