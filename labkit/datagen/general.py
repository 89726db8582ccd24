"""The ``general`` dataset: the hand-written assistant conversations of
:mod:`labkit.datagen.general_conversations`, split ~85/15 train/test by a seeded hash.

The split hashes each conversation's first user message, so adding or editing one conversation never
moves the others between splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.datagen.general_conversations import CONVERSATIONS, Conversation
from labkit.datagen.io import chat_row, stable_bucket, write_jsonl
from labkit.datagen.schema import DatasetRowError, check_chat_row

DATASET = "general"
SEED = 85
TEST_PERCENT = 15
MAX_REPLY_WORDS = 120


def split_of(conversation: Conversation, seed: int = SEED) -> str:
    """``"test"`` for about TEST_PERCENT% of conversations, ``"train"`` for the rest."""
    return "test" if stable_bucket(conversation.messages[0], seed) < TEST_PERCENT else "train"


def to_sharegpt(conversation: Conversation) -> list[dict[str, str]]:
    """ShareGPT messages: optional system, then human/gpt alternating."""
    roles = ("human", "gpt")
    messages = [{"from": roles[i % 2], "value": text} for i, text in enumerate(conversation.messages)]
    return ([{"from": "system", "value": conversation.system}] if conversation.system else []) + messages


def check_reply_lengths(row: dict[str, Any]) -> None:
    for message in row["conversations"]:
        words = len(message["value"].split())
        if message["from"] == "gpt" and words >= MAX_REPLY_WORDS:
            raise DatasetRowError(f"row {row['id']!r}: a reply has {words} words; keep replies under "
                                  f"{MAX_REPLY_WORDS} words")


def build_splits(seed: int = SEED) -> dict[str, list[dict[str, Any]]]:
    """Rows per split, in authoring order."""
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for conversation in CONVERSATIONS:
        split = split_of(conversation, seed)
        row = chat_row(DATASET, split, len(rows[split]), to_sharegpt(conversation), {})
        check_chat_row(row, DATASET)
        check_reply_lengths(row)
        rows[split].append(row)
    return rows


def generate(out_dir: Path) -> dict[str, int]:
    """Write ``<out_dir>/general/{train,test}.jsonl``; returns the row count per split."""
    return {split: write_jsonl(out_dir / DATASET / f"{split}.jsonl", rows)
            for split, rows in build_splits().items()}
