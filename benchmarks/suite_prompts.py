"""Check: labkit's suite conversions build the same requests as lm-evaluation-harness 0.4.13's own task YAMLs.

    python -m benchmarks.suite_prompts [--fixtures tests/fixtures/suites]

For each multiple-choice suite, the harness's task config (its YAML, read through the harness's own loader, so
``include`` and ``!function`` resolve) is pointed at a local file in the hub schema (``dataset_path: json``) and
builds its log-likelihood requests; labkit converts the same rows. Printed per suite: rows, and how many requests
agree on (context, continuation) and gold index. Needs ``lm-eval==0.4.13`` (a benchmark-only dependency).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "suites"
FILES = {"arc_challenge": "arc", "arc_easy": "arc", "hellaswag": "hellaswag", "piqa": "piqa",
         "openbookqa": "openbookqa", "siqa": "siqa", "mmlu": "mmlu"}


def harness_requests(task_name: str, data_file: Path, split: str) -> list[tuple[list[tuple[str, str]], int]]:
    """[(the (context, continuation) pairs of a doc, gold index)] from the harness's own task for ``task_name``."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = TaskManager()
    config = load_yaml(manager._entry(task_name).yaml_path, resolve_func=True)
    splits = ("training_split", "validation_split", "test_split", "fewshot_split")
    evaluated = "test_split" if config.get("test_split") else "validation_split"
    if config.get(evaluated) != split:
        raise RuntimeError(f"{task_name}: the harness evaluates {config.get(evaluated)!r}, labkit's registry says "
                           f"{split!r}")
    config.update({key: None for key in splits if key != evaluated})  # the local file holds the evaluated split only
    config.pop("fewshot_config", None)
    config.update(task=task_name, dataset_path="json", dataset_name=None,
                  dataset_kwargs={"data_files": {split: str(data_file)}})
    task = manager.load([config])["tasks"][task_name]
    task.build_all_requests(rank=0, world_size=1)
    per_doc: dict[int, list] = {}
    for instance in task.instances:
        per_doc.setdefault(instance.doc_id, []).append(instance.arguments)
    docs = list(task.eval_docs)
    return [(per_doc[i], task.doc_to_target(doc) if isinstance(task.doc_to_target(doc), int)
             else task.doc_to_choice(doc).index(task.doc_to_target(doc))) for i, doc in enumerate(docs)]


def labkit_requests(suite: str, data_file: Path) -> list[tuple[list[tuple[str, str]], int]]:
    from labkit.eval.mcscore import TARGET_DELIMITER, build_context
    from labkit.eval.suites.load import file_items
    from labkit.eval.suites.registry import SUITES

    items = file_items(data_file, SUITES[suite], None, 0, first=True)
    return [([(item.get("context") or build_context(item["query"]), TARGET_DELIMITER + c) for c in item["choices"]],
             item["gold"]) for item in items]


def compare_suite(suite: str, data_file: Path) -> dict:
    from labkit.eval.suites.registry import SUITES

    spec = SUITES[suite]
    if suite == "mmlu":  # the harness has one task per subject: build each row's own
        rows = [json.loads(line) for line in data_file.read_text().splitlines() if line.strip()]
        harness = []
        for row in rows:
            one = data_file.parent / f".mmlu_{row['subject']}.jsonl"
            one.write_text(json.dumps(row) + "\n")
            harness += harness_requests(f"mmlu_{row['subject']}", one, spec.split)
            one.unlink()
    else:
        harness = harness_requests(spec.harness_task, data_file, spec.split)
    ours = labkit_requests(suite, data_file)
    same_requests = sum(h[0] == o[0] for h, o in zip(harness, ours))
    same_gold = sum(h[1] == o[1] for h, o in zip(harness, ours))
    first_difference = next(({"harness": h, "labkit": o} for h, o in zip(harness, ours) if h != o), None)
    return {"suite": suite, "rows": len(ours), "harness_rows": len(harness), "same_requests": same_requests,
            "same_gold": same_gold, "first_difference": first_difference}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    results = [compare_suite(suite, args.fixtures / f"{name}.jsonl") for suite, name in FILES.items()]
    for r in results:
        print(f"{r['suite']:14s} rows {r['rows']} (harness {r['harness_rows']}): requests agree {r['same_requests']}/"
              f"{r['rows']}, gold agrees {r['same_gold']}/{r['rows']}")
        if r["first_difference"]:
            print("  first difference:", json.dumps(r["first_difference"])[:600])
    if any(r["first_difference"] or r["rows"] != r["harness_rows"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
