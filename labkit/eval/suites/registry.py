"""One place per evaluation suite: where its rows come from on the hub and how they become labkit items.

Each multiple-choice suite copies lm-evaluation-harness 0.4.13's task YAML (``lm_eval/tasks/<task>/*.yaml`` in the
``lm-eval==0.4.13`` wheel): the same ``dataset_path``, ``dataset_name``, evaluated split (``test_split`` when the
task has one, else ``validation_split``), ``doc_to_text``, ``doc_to_choice`` and ``doc_to_target``; so labkit's
numbers are comparable with published harness numbers. The conversions are in :mod:`labkit.eval.suites.convert`.

Revisions: a commit of the hub dataset repository, so that a re-run reads the same rows. Every suite is pinned. The
commits were read from public code that pins them, each found in more than one unrelated project (this machine has no
hub access to confirm them); a suite given ``None`` would read the default branch, and the evaluation summary's
``sources`` would say "not pinned".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from labkit.config import CUSTOM_SUITE, EVAL_SUITES
from labkit.eval.suites import convert


@dataclass(frozen=True)
class Suite:
    name: str
    label: str                    # for verdicts and tables, e.g. "ARC-Challenge"
    kind: str                     # "mc" (log-likelihood acc / acc_norm) or "squad" (generated answers, EM / F1)
    hub_id: str | None            # None: the project's own data (demo)
    config: str | None = None     # the hub dataset's configuration (harness ``dataset_name``)
    split: str | None = None      # the split the harness evaluates
    revision: str | None = None   # a commit of the hub repository (None: the default branch)
    columns: tuple[str, ...] = ()  # the hub schema's columns that the conversion reads (format detection)
    to_items: Callable[[list[Mapping[str, Any]]], list[dict]] | None = None
    harness_task: str | None = None  # the lm-eval task name the suite reproduces


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("demo", "the project's held-out data", "demo", None),
    Suite("arc_challenge", "ARC-Challenge", "mc", "allenai/ai2_arc", "ARC-Challenge", "test",
          "210d026faf9955653af8916fad021475a3f00453", ("question", "choices", "answerKey"), convert.arc,
          "arc_challenge"),
    Suite("arc_easy", "ARC-Easy", "mc", "allenai/ai2_arc", "ARC-Easy", "test",
          "210d026faf9955653af8916fad021475a3f00453", ("question", "choices", "answerKey"), convert.arc, "arc_easy"),
    Suite("hellaswag", "HellaSwag", "mc", "Rowan/hellaswag", None, "validation",
          "218ec52e09a7e7462a5400043bb9a69a41d06b76", ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
          convert.hellaswag, "hellaswag"),
    Suite("piqa", "PIQA", "mc", "baber/piqa", None, "validation",
          "142f6d7367fd9877f0fb3b5734ea6a545f54cdd1", ("goal", "sol1", "sol2", "label"),
          convert.piqa, "piqa"),
    Suite("openbookqa", "OpenBookQA", "mc", "allenai/openbookqa", "main", "test",
          "388097ea7776314e93a529163e0fea805b8a6454", ("question_stem", "choices", "answerKey"), convert.openbookqa,
          "openbookqa"),
    Suite("siqa", "Social IQa", "mc", "lighteval/siqa", None, "validation",
          "54c6a1f8cb6daf4f5abf24a601852612fb35eb25",
          ("context", "question", "answerA", "answerB", "answerC", "label"), convert.siqa, "social_iqa"),
    Suite("mmlu", "MMLU", "mc", "cais/mmlu", "all", "test", "c30699e8356da336a370243923dbaf21066bb9fe",
          ("question", "subject", "choices", "answer"), convert.mmlu, "mmlu"),
    Suite("squad", "SQuAD v1.1", "squad", "rajpurkar/squad", "plain_text", "validation",
          "7b6d24c440a36b6815f21b70d25016731768db1f",
          ("id", "context", "question", "answers"), convert.squad, None),
)}

if tuple(SUITES) != EVAL_SUITES:  # labkit.config validates eval.suite against its own list of names
    raise RuntimeError(f"labkit.config.EVAL_SUITES {EVAL_SUITES} and the suites served here {tuple(SUITES)} differ")


def custom_category(name: str) -> str:
    """``custom:path/to/my_mc.jsonl`` -> ``custom-my_mc`` (a file-name-safe category)."""
    from pathlib import PurePath

    return "custom-" + PurePath(name[len(CUSTOM_SUITE):].strip()).stem


def suite_of_category(category: str) -> Suite | None:
    """The suite a result category comes from (``arc_challenge`` -> its Suite); None for demo categories."""
    suite = SUITES.get(category)
    return suite if suite is not None and suite.kind != "demo" else None


def scored_as(category: str) -> str:
    """The demo category whose metrics a category uses: MC suites and custom files score like ``mc_knowledge``,
    SQuAD like ``reading_qa``; any other category is itself."""
    suite = suite_of_category(category)
    if suite is not None:
        return "mc_knowledge" if suite.kind == "mc" else "reading_qa"
    return "mc_knowledge" if category.startswith("custom-") else category


def label_of(category: str) -> str:
    """A category's name for people: the benchmark's (ARC-Challenge), else the category with spaces."""
    suite = suite_of_category(category)
    if suite is not None:
        return suite.label
    if category == "mc_knowledge":
        return "general knowledge (data/mc_knowledge)"
    return category.replace("_", " ")
