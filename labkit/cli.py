"""``labkit <stage>``: the notebooks' stages from the command line (for scripts, CI and multi-GPU launches).

Every stage command takes ``--preset``, ``--set key=value`` (repeatable), ``--run NAME`` and ``--json``;
``labkit report --run NAME`` only reads the run (its own config.json, never a preset). ``labkit experiment``
runs or resumes a grid of runs and writes its report; ``labkit reference`` does so for the committed
reference runs (see labkit/analysis/reference.py). Errors in settings or data end with one clear line, not a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from labkit.analysis.commands import add_report_commands
from labkit.config import (DEFAULT_PRESET, ConfigError, all_keys, field_doc, load_config, preset_names,
                           read_preset)


def _stage_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"preset name ({', '.join(preset_names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set lora.r=8 --set lr=1e-4")
    parser.add_argument("--run", default="demo", help="run folder name under $LABKIT_RUNS")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


def _emit(result, as_json: bool) -> None:
    from labkit.distributed import is_main_process

    if not is_main_process():  # under `accelerate launch` every process runs the command; one prints its result
        return
    if as_json:
        print(json.dumps(result, default=str, sort_keys=True))
    elif isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    elif result is not None:
        print(result)


def _open(args):
    from labkit.runs import Run

    config = load_config(args.preset, args.overrides)
    return config, Run.open(args.run, config)


# ---------------------------------------------------------------- commands

def cmd_presets(args) -> dict | str:
    if args.keys:
        return "\n".join(f"{key}: {field_doc(key)}" for key in all_keys())
    rows = {name: read_preset(name).get("description", "") for name in preset_names()}
    return rows if args.json else "\n".join(f"{n:28s} {d}" for n, d in rows.items())


def cmd_models(args) -> dict | str:
    from labkit import models

    if args.materialise:
        return models.describe(args.materialise)
    return "\n".join([*models.REGISTRY, models.TINY]) if not args.json else {"models": models.registry_names()}


def cmd_doctor(args) -> list | str:
    from labkit import doctor

    return doctor.report(doctor.run_checks(), as_json=args.json)


def cmd_notebooks(args) -> list:
    from labkit.nbrun import run_notebooks

    config, run = _open(args)
    if args.restart:  # notebook 02 resumes; with no checkpoint, log or adapter left it starts from step 0
        from labkit.train.guard import run_lock
        from labkit.train.resume import start_fresh

        with run_lock(run.dir):
            start_fresh(run, announce=True)
    return run_notebooks(args.preset, run, args.overrides, only=args.only or None)


def cmd_generate(args) -> dict:
    from labkit.env import pick_device
    from labkit.infer.generate import Sampling, ask
    from labkit.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(args.model, device=pick_device(args.device))
    tokenizer = load_tokenizer(args.model)
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    reply = ask(model, tokenizer, args.prompt, system=args.system, sampling=sampling)
    return {"model": args.model, "prompt": args.prompt, "reply": reply} if args.json else reply


def cmd_tools(args) -> dict:
    from labkit.infer.tools.command import tools_command

    result = tools_command(args.list, args.call, docs=args.docs, web_search=args.web_search)
    if args.call is not None and not result["ok"]:  # the error is printed like a result; the exit code says it failed
        _emit(result, args.json)
        raise SystemExit(1)
    return result


def cmd_plan(args) -> dict | str:
    """Predicted memory, RAM, speed, time, disk and a verdict for a preset on a GPU (issue 23)."""
    from labkit.train.planner import plan
    from labkit.train.planner.verdict import render

    result = plan(load_config(args.preset, args.overrides), args.gpu, args.run)
    return result if args.json else render(result)


def _stage(module: str, function: str, extra: Callable = lambda args: {}) -> Callable:
    """Run a stage function ``function(config, run, **extra(args))`` from ``labkit.<module>``."""
    def command(args):
        import importlib

        config = load_config(args.preset, args.overrides)  # bad settings fail first, with one clear line
        from labkit.env import import_unsloth_early

        import_unsloth_early(config.model.backend)  # on a GPU with Unsloth: before transformers is imported
        try:
            target = getattr(importlib.import_module(f"labkit.{module}"), function)
        except (ImportError, AttributeError):
            raise SystemExit(f"labkit: the '{args.command}' stage is not available in this version") from None
        from labkit.runs import Run

        return target(config, Run.open(args.run, config), **extra(args))
    return command


# The notebooks' stages as commands: (command, module under labkit, function(config, run, ...), help).
STAGE_COMMANDS = (
    ("prepare", "data.prepare", "run_prepare", "notebook 01: load, validate, split and save the data"),
    ("train", "train.trainer", "run_training", "notebook 02: LoRA fine-tuning"),
    ("eval", "eval.evaluate", "run_evaluation", "notebook 04: evaluate base and fine-tuned models"),
    ("export", "export", "run_export", "merge / GGUF export with a parity check"),
    ("chat", "infer.chat", "run_chat", "a Gradio chat with the fine-tuned model"),
)


def _add_restart(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--restart", action="store_true",
                        help="train the run over from step 0, removing its checkpoints, training log and adapter "
                             f"(without it `labkit {command}` resumes from the latest checkpoint, and a finished "
                             "run is not trained again)")


def continue_command(args) -> str:
    """The command line that continues a stopped ``labkit train`` (it resumes by default; never --restart)."""
    import shlex

    from labkit.distributed import is_distributed

    words = ["--preset", args.preset, "--run", args.run, *[w for o in args.overrides for w in ("--set", o)]]
    start = "accelerate launch [the same launch options] -m labkit.cli train" if is_distributed() else "labkit train"
    return " ".join([start, *map(shlex.quote, words)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    presets = sub.add_parser("presets", help="list presets (or every settable key with --keys)")
    presets.add_argument("--keys", action="store_true")
    presets.add_argument("--json", action="store_true")
    presets.set_defaults(func=cmd_presets)

    models = sub.add_parser("models", help="list registry models; --materialise NAME prepares one offline")
    models.add_argument("--materialise", metavar="NAME")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    doctor = sub.add_parser("doctor", help="check Python, libraries, GPU / bf16, memory, disk and HF token; "
                                           "one line a check, with the fix")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=cmd_doctor)

    notebooks = _stage_parser(sub, "notebooks", "execute the notebook series top to bottom into the run folder")
    notebooks.add_argument("--only", action="append", help="run only these notebooks (e.g. --only 01)")
    _add_restart(notebooks, "notebooks")
    notebooks.set_defaults(func=cmd_notebooks)

    generate = sub.add_parser("generate", help="answer one prompt with a model (greedy by default)")
    generate.add_argument("--model", default="smollm2-135m-instruct")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--system")
    generate.add_argument("--max-new-tokens", type=int, default=128)
    generate.add_argument("--temperature", type=float, default=0.0)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--device", default="auto")
    generate.add_argument("--json", action="store_true")
    generate.set_defaults(func=cmd_generate)

    tools = sub.add_parser("tools", help="list the tools a model can call, or run one call")
    tools.add_argument("--list", action="store_true", help="print every tool's JSON schema")
    tools.add_argument("--call", metavar="JSON", help='run one call: \'{"name": "calculate", "arguments": {...}}\'')
    tools.add_argument("--docs", metavar="DIR", help="the folder search_documents searches")
    tools.add_argument("--web-search", action="store_true", help="allow web_search to reach the internet")
    tools.add_argument("--json", action="store_true")
    tools.set_defaults(func=cmd_tools)

    for name, module, function, help_text in STAGE_COMMANDS:
        stage = _stage_parser(sub, name, help_text)
        stage.set_defaults(func=_stage(module, function))
        if name == "train":
            _add_restart(stage, "train")
            stage.set_defaults(func=_stage(module, function, lambda a: {"resume": not a.restart,
                                                                        "command": continue_command(a)}))
        if name == "eval":
            _add_eval_file_options(stage)
        if name == "chat":
            stage.add_argument("--share", action="store_true", help="also open a public Gradio link (off: 127.0.0.1 only)")
            stage.add_argument("--port", type=int, help="local port (default: the first free one from 7860)")
            stage.add_argument("--tools", help="let the model call these tools, e.g. calculate,search_documents")
            stage.add_argument("--docs", metavar="DIR", help="the folder search_documents searches")
            stage.add_argument("--web-search", action="store_true", help="allow web_search to reach the internet")
            stage.add_argument("--compare", action="store_true",
                               help="add a Compare tab: base and fine-tuned model answer the same message side by side")
            stage.set_defaults(func=_stage(module, function, lambda a: {
                "share": a.share, "port": a.port, "tools": a.tools, "docs": a.docs, "web_search": a.web_search,
                "compare": a.compare}))
    plan = _stage_parser(sub, "plan", "will it fit? predicted GPU memory, RAM, tokens/s, time, disk and what to "
                                      "change, before training")
    plan.add_argument("--gpu", help="T4, L4, A10G, A100-40GB, A100-80GB, H100, H200 or cpu (default: the device "
                                    "present)")
    plan.set_defaults(func=cmd_plan)
    add_report_commands(sub)
    return parser


def _add_eval_file_options(parser: argparse.ArgumentParser) -> None:
    """``labkit eval --model M --suite S [--data FILE] [--limit N]``: one model on one suite, outside a run."""
    parser.add_argument("--model", help="model to evaluate (default: the preset's model.name)")
    parser.add_argument("--suite", help="score one suite outside a run: arc_challenge, arc_easy, hellaswag, piqa, "
                                        "openbookqa, siqa, mmlu (acc / acc_norm) or squad (exact match / F1); "
                                        "downloaded from the hub unless --data gives a local copy")
    parser.add_argument("--data", help="a local file instead of the hub download: the suite's hub schema or labkit's "
                                       "multiple-choice JSONL of {query, choices, gold} rows (detected); alone, a "
                                       "multiple-choice file")
    parser.add_argument("--limit", type=int, help="with --suite / --data: score only the first N rows (as "
                                                  "lm_eval --limit does)")
    run_suite = parser.get_default("func")

    def command(args):
        if args.data or args.suite:
            return cmd_eval_file(args)
        if args.limit is not None:
            raise ConfigError("--limit goes with --suite or --data; for a run's evaluation use --set eval.limit=N")
        if args.model:
            args.overrides.append(f"model.name={args.model}")
        return run_suite(args)
    parser.set_defaults(func=command)


def cmd_eval_file(args) -> dict:
    from labkit.config import EVAL_SUITES
    from labkit.eval.standalone import score_suite

    if args.suite is not None and (args.suite == "demo" or args.suite not in EVAL_SUITES):
        hub = [name for name in EVAL_SUITES if name != "demo"]
        raise ConfigError(f"--suite {args.suite!r} is not a hub suite: use one of {', '.join(hub)} (the demo suite "
                          "is a run's evaluation: labkit eval --preset P --run NAME)")
    config = load_config(args.preset, args.overrides)
    return score_suite(config, args.model or config.model.name, suite=args.suite, data=args.data, limit=args.limit)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except ConfigError as err:
        print(f"labkit: configuration error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"labkit: {type(err).__name__}: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)  # a training stopped by a signal: 128 + the signal, as a shell says
    _emit(result, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
