"""``python -m labkit.datagen [--out DIR]``: regenerate every project dataset (default ``data/``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.datagen import generate_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.datagen", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data"),
                        help="folder to write <dataset>/<split>.jsonl into (default: data)")
    args = parser.parse_args(argv)
    for dataset, counts in generate_all(args.out).items():
        print(dataset, " ".join(f"{split}={count}" for split, count in counts.items()))


if __name__ == "__main__":
    main()
