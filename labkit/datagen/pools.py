"""Value pools shared by the generators, each split into disjoint train and test halves.

A held-out value is one that appears only in the test pool, so a test score measures whether the
model generalises to values it never saw during training. The lists are written by hand; the
numeric pools are partitioned by a seeded hash (:func:`partition`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from labkit.datagen.io import stable_bucket

T = TypeVar("T")
SPLITS = ("train", "test")


class PoolError(ValueError):
    """A value pool is misconfigured (empty or overlapping halves)."""


@dataclass(frozen=True)
class Pool(Generic[T]):
    """Train and test values of one kind; the halves never overlap."""

    name: str
    train: tuple[T, ...]
    test: tuple[T, ...]

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise PoolError(f"pool {self.name!r} needs values in both halves")
        overlap = set(self.train) & set(self.test)
        if overlap:
            raise PoolError(f"pool {self.name!r}: values in both halves: {sorted(map(str, overlap))}")

    def values(self, split: str) -> tuple[T, ...]:
        if split not in SPLITS:
            raise PoolError(f"split must be one of {SPLITS}, got {split!r}")
        return self.train if split == "train" else self.test

    def sample(self, rng: random.Random, split: str) -> T:
        return rng.choice(self.values(split))


def partition(name: str, candidates: Sequence[T], test_percent: int = 25, seed: int = 7) -> Pool[T]:
    """Split ``candidates`` into a pool by a seeded hash of each value (stable under reordering)."""
    test = tuple(v for v in candidates if stable_bucket(f"{name}:{v}", seed) < test_percent)
    train = tuple(v for v in candidates if v not in test)
    return Pool(name, train, test)


def words_pool(name: str, train: str, test: str) -> Pool[str]:
    """A pool from two ``;``-separated strings (compact to write by hand)."""
    split = lambda text: tuple(item.strip() for item in text.split(";") if item.strip())  # noqa: E731
    return Pool(name, split(train), split(test))


CITIES = words_pool(
    "city",
    "Paris; London; Tokyo; Berlin; Madrid; Rome; Chicago; Toronto; Sydney; Cairo; Mumbai; Seoul; "
    "Lisbon; Vienna; Dublin; Oslo; Prague; Warsaw; Athens; Boston; Denver; Seattle; Miami; Nairobi; "
    "Lagos; Lima; Bogota; Santiago; Manila; Jakarta; Hanoi; Bangkok; Istanbul; Helsinki; Zurich; "
    "Glasgow; Montreal; Vancouver; Osaka; Melbourne",
    "Reykjavik; Kraków; Marrakesh; Valparaíso; Tbilisi; Ljubljana; Winnipeg; Adelaide; Cebu; Accra; "
    "Porto; Bergen; Tallinn; Cusco; Hobart",
)

FIRST_NAMES = words_pool(
    "first_name",
    "Alice; Ben; Carla; David; Emma; Farid; Grace; Hugo; Isla; Jamal; Kate; Liam; Maya; Noah; Olivia; "
    "Pedro; Quinn; Rosa; Sam; Tara; Umar; Vera; Will; Yara; Zoe; Aaron; Bella; Chloe; Daniel; Elena; "
    "Felix; Hannah; Ivan; Julia; Leo; Mia; Nina; Oscar; Priya; Ryan",
    "Xiomara; Thaddeus; Ingrid; Kwame; Solveig; Anselm; Marisol; Dmitri; Ottilie; Bertrand; Yusuf; "
    "Leocadia; Fenwick; Saoirse; Ignatius",
)
