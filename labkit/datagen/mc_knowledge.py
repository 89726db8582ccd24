"""The ``mc_knowledge`` evaluation set: written multiple-choice general-knowledge questions.

Used to measure what fine-tuning costs in general knowledge. Written in the
lm-evaluation-harness-like format of the shared public evaluation sets:
``{"id", "category", "query": "Question: ...", "choices": [4 strings], "gold": index}``; score it by
comparing the log-likelihood of ``" " + choice`` after ``query + "\\nAnswer:"``. Test split only.

The gold position is balanced: positions 0-3 are dealt out equally (a seeded shuffle of
``[0, 1, 2, 3] * n``), and the wrong answers fill the other positions in a seeded random order.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from labkit.datagen.io import row_id, write_jsonl
from labkit.datagen.mc_questions import QUESTIONS
from labkit.datagen.schema import check_mc_row

DATASET = "mc_knowledge"
SEED = 150


def build_rows(seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    golds = [index % 4 for index in range(len(QUESTIONS))]
    rng.shuffle(golds)
    rows = []
    for index, ((_topic, question, correct, wrong), gold) in enumerate(zip(QUESTIONS, golds)):
        choices = list(wrong)
        rng.shuffle(choices)
        choices.insert(gold, correct)
        row = {"id": row_id(DATASET, "test", index), "category": DATASET,
               "query": f"Question: {question}", "choices": choices, "gold": gold}
        check_mc_row(row)
        rows.append(row)
    return rows


def generate(out_dir: Path) -> dict[str, int]:
    """Write ``<out_dir>/mc_knowledge/test.jsonl``; returns ``{"test": rows}``."""
    return {"test": write_jsonl(out_dir / DATASET / "test.jsonl", build_rows())}
