"""The ``arithmetic`` dataset: word problems with one exact numeric answer.

Reply format (one line): the worked calculation, then ``The answer is N.``, e.g.
``17 + 25 = 42. The answer is 42.`` Integers are written plainly; money answers have exactly two
decimals (``The answer is 12.50.``) and their reference is the float ``12.5``.

Held out in test: the problem templates (test templates are different stories and wordings) and the
value ranges (every sampled number in a test problem lies in a range no train problem uses, see
:data:`RANGES`), plus the people's names.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.datagen.io import chat_row, turns, write_splits
from labkit.datagen.pools import FIRST_NAMES
from labkit.datagen.schema import check_chat_row

DATASET = "arithmetic"
SEED = 2024
COUNTS = {"train": 400, "test": 100}

RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "n": {"train": (2, 49), "test": (50, 99)},            # counts
    "k": {"train": (2, 6), "test": (7, 9)},               # small multipliers / group sizes
    "cents": {"train": (100, 999), "test": (1000, 1999)},  # prices, in cents ($1.00-$9.99 / $10.00-$19.99)
}
"""Inclusive value range of each role, per split; train and test ranges never overlap."""


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Problem:
    """A problem template.

    ``roles`` gives the range role of each sampled field; ``derive`` adds display-only fields (and
    may reject a sample by returning None); ``solve`` computes the answer from the displayed fields
    (integers, money in cents) and the ``work`` format string shows the calculation.
    """

    text: str
    work: str
    roles: dict[str, str]
    solve: Callable[[dict[str, int]], int]
    money_answer: bool = False
    derive: Callable[[dict[str, int]], dict[str, int] | None] = lambda v: {}


def _minus_ok(v: dict[str, int]) -> dict[str, int] | None:
    return {} if v["a"] > v["b"] else None


TRAIN_PROBLEMS: tuple[Problem, ...] = (
    Problem("{name} has {a} marbles and finds {b} more. How many marbles does {name} have now?",
            "{a} + {b} = {answer}", {"a": "n", "b": "n"}, lambda v: v["a"] + v["b"]),
    Problem("A baker made {a} rolls and sold {b} of them. How many rolls are left?",
            "{a} - {b} = {answer}", {"a": "n", "b": "n"}, lambda v: v["a"] - v["b"], derive=_minus_ok),
    Problem("There are {k} boxes with {a} pencils in each box. How many pencils are there in total?",
            "{k} * {a} = {answer}", {"k": "k", "a": "n"}, lambda v: v["k"] * v["a"]),
    Problem("{name} shares {total} stickers equally among {k} friends. How many stickers does each "
            "friend get?", "{total} / {k} = {answer}", {"q": "n", "k": "k"},
            lambda v: v["total"] // v["k"], derive=lambda v: {"total": v["q"] * v["k"]}),
    Problem("A shop sells pens for ${price} each. How much do {k} pens cost in dollars?",
            "{k} * {price} = {answer}", {"price": "cents", "k": "k"}, lambda v: v["k"] * v["price"],
            money_answer=True),
    Problem("A train travels {a} kilometres in the morning and {b} kilometres in the afternoon. How many "
            "kilometres does it travel in total?", "{a} + {b} = {answer}", {"a": "n", "b": "n"},
            lambda v: v["a"] + v["b"]),
    Problem("{name} buys {k} packs of cards with {a} cards in each pack and gives away {b} cards. How "
            "many cards are left?", "{k} * {a} - {b} = {answer}", {"k": "k", "a": "n", "b": "n"},
            lambda v: v["k"] * v["a"] - v["b"], derive=lambda v: {} if v["k"] * v["a"] > v["b"] else None),
    Problem("A class has {a} students and each student brings {k} books. How many books do they bring "
            "altogether?", "{a} * {k} = {answer}", {"a": "n", "k": "k"}, lambda v: v["a"] * v["k"]),
    Problem("{name} had ${price} and spent ${spent}. How many dollars are left?",
            "{price} - {spent} = {answer}", {"price": "cents", "spent": "cents"},
            lambda v: v["price"] - v["spent"], money_answer=True,
            derive=lambda v: {} if v["price"] > v["spent"] else None),
    Problem("A bus has {a} passengers. At the next stop {b} get off and {c} get on. How many passengers "
            "are on the bus now?", "{a} - {b} + {c} = {answer}", {"a": "n", "b": "n", "c": "n"},
            lambda v: v["a"] - v["b"] + v["c"], derive=_minus_ok),
    Problem("A farmer collects {a} eggs every day for {k} days. How many eggs does the farmer collect?",
            "{a} * {k} = {answer}", {"a": "n", "k": "k"}, lambda v: v["a"] * v["k"]),
    Problem("{name} reads {a} pages on Monday and twice as many on Tuesday. How many pages does {name} "
            "read on the two days?", "{a} + 2 * {a} = {answer}", {"a": "n"}, lambda v: 3 * v["a"]),
)

TEST_PROBLEMS: tuple[Problem, ...] = (
    Problem("A library received {a} new books in March and {b} in April. What is the total number of "
            "new books?", "{a} + {b} = {answer}", {"a": "n", "b": "n"}, lambda v: v["a"] + v["b"]),
    Problem("A tank holds {a} litres of water. After {b} litres leak out, how many litres remain?",
            "{a} - {b} = {answer}", {"a": "n", "b": "n"}, lambda v: v["a"] - v["b"], derive=_minus_ok),
    Problem("Each crate contains {a} oranges. How many oranges are in {k} crates?",
            "{k} * {a} = {answer}", {"a": "n", "k": "k"}, lambda v: v["k"] * v["a"]),
    Problem("{total} chairs are set out in {k} equal rows. How many chairs are in each row?",
            "{total} / {k} = {answer}", {"q": "n", "k": "k"}, lambda v: v["total"] // v["k"],
            derive=lambda v: {"total": v["q"] * v["k"]}),
    Problem("One concert ticket costs ${price}. What do {k} tickets cost altogether, in dollars?",
            "{k} * {price} = {answer}", {"price": "cents", "k": "k"}, lambda v: v["k"] * v["price"],
            money_answer=True),
    Problem("{name} scores {a} points in each of {k} games and then loses {b} points as a penalty. What "
            "is the final score?", "{k} * {a} - {b} = {answer}", {"a": "n", "k": "k", "b": "n"},
            lambda v: v["k"] * v["a"] - v["b"], derive=lambda v: {} if v["k"] * v["a"] > v["b"] else None),
)


def problems(split: str) -> tuple[Problem, ...]:
    return TRAIN_PROBLEMS if split == "train" else TEST_PROBLEMS


def display(values: dict[str, int], problem: Problem) -> dict[str, str]:
    """Text of each field: money fields (role ``cents``) as dollars with two decimals."""
    return {name: money(value) if problem.roles.get(name) == "cents" else str(value)
            for name, value in values.items()}


def answer_value(problem: Problem, raw: int) -> int | float:
    """The reference answer: an int, or a float in dollars (two decimals) for money problems."""
    return round(raw / 100, 2) if problem.money_answer else raw


def make_example(problem: Problem, rng: random.Random, split: str) -> tuple[str, str, int | float] | None:
    """(question, reply, answer), or None when the sampled values do not fit the story."""
    values = {name: rng.randint(*RANGES[role][split]) for name, role in problem.roles.items()}
    extra = problem.derive(values)
    if extra is None:
        return None
    values.update(extra)
    raw = problem.solve(values)
    answer_text = money(raw) if problem.money_answer else str(raw)
    shown = display(values, problem) | {"name": FIRST_NAMES.sample(rng, split)}
    question = problem.text.format(**shown)
    work = problem.work.format(**shown, answer=answer_text)
    return question, f"{work}. The answer is {answer_text}.", answer_value(problem, raw)


def build_split(split: str, count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` rows of ``split``, cycling through the split's templates; no repeated question."""
    rng = random.Random(f"{seed}:{split}")
    templates = problems(split)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(rows) < count:
        example = make_example(templates[len(rows) % len(templates)], rng, split)
        if example is None or example[0] in seen:
            continue
        question, reply, answer = example
        seen.add(question)
        row = chat_row(DATASET, split, len(rows), turns(question, reply), {"answer": answer})
        check_chat_row(row, DATASET)
        rows.append(row)
    return rows


def generate(out_dir: Path) -> dict[str, int]:
    """Write ``<out_dir>/arithmetic/{train,test}.jsonl``; returns the row count per split."""
    return write_splits(out_dir, DATASET, build_split, COUNTS)
