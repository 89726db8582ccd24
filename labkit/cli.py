"""``labkit <stage>``: the notebooks' stages from the command line (for scripts, CI and multi-GPU launches).

Every stage command takes ``--preset``, ``--set key=value`` (repeatable), ``--run NAME`` and ``--json``.
Errors in settings or data end with one clear line, not a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from labkit.config import DEFAULT_PRESET, ConfigError, all_keys, field_doc, load_config, preset_names, read_preset


def _stage_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"preset name ({', '.join(preset_names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting, e.g. --set lora.r=8 --set lr=1e-4")
    parser.add_argument("--run", default="demo", help="run folder name under $LABKIT_RUNS")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


def _emit(result, as_json: bool) -> None:
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


def cmd_notebooks(args) -> list:
    from labkit.nbrun import run_notebooks

    config, run = _open(args)
    return run_notebooks(args.preset, run, args.overrides, only=args.only or None)


def cmd_generate(args) -> dict:
    from labkit.env import pick_device
    from labkit.infer import Sampling, ask
    from labkit.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(args.model, device=pick_device(args.device))
    tokenizer = load_tokenizer(args.model)
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    reply = ask(model, tokenizer, args.prompt, system=args.system, sampling=sampling)
    return {"model": args.model, "prompt": args.prompt, "reply": reply} if args.json else reply


def _stage(module: str, function: str, extra: Callable = lambda args: {}) -> Callable:
    """Run a stage function ``function(config, run, **extra(args))`` from ``labkit.<module>``."""
    def command(args):
        import importlib

        config = load_config(args.preset, args.overrides)  # bad settings fail first, with one clear line
        try:
            target = getattr(importlib.import_module(f"labkit.{module}"), function)
        except (ImportError, AttributeError):
            raise SystemExit(f"labkit: the '{args.command}' stage is not available in this version") from None
        from labkit.runs import Run

        return target(config, Run.open(args.run, config), **extra(args))
    return command


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

    notebooks = _stage_parser(sub, "notebooks", "execute the notebook series top to bottom into the run folder")
    notebooks.add_argument("--only", action="append", help="run only these notebooks (e.g. --only 01)")
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

    for name, module, function, help_text in (
        ("prepare", "data.prepare", "run_prepare", "notebook 01: load, validate, split and save the data"),
        ("train", "train", "run_training", "notebook 02: LoRA fine-tuning"),
        ("eval", "evaluate", "run_evaluation", "notebook 04: evaluate base and fine-tuned models"),
        ("export", "export", "run_export", "merge / GGUF export with a parity check"),
        ("report", "report", "run_report", "notebook 05: figures and tables into reports/"),
        ("chat", "chat", "run_chat", "a Gradio chat with the fine-tuned model"),
    ):
        stage = _stage_parser(sub, name, help_text)
        stage.set_defaults(func=_stage(module, function))
        if name == "eval":
            _add_eval_file_options(stage)
        if name == "chat":
            stage.add_argument("--share", action="store_true", help="also open a public Gradio link (off: 127.0.0.1 only)")
            stage.add_argument("--port", type=int, help="local port (default: the first free one from 7860)")
            stage.set_defaults(func=_stage(module, function, lambda a: {"share": a.share, "port": a.port}))
    return parser


def _add_eval_file_options(parser: argparse.ArgumentParser) -> None:
    """``labkit eval --data FILE.jsonl``: score one multiple-choice file instead of the run's suite."""
    parser.add_argument("--model", help="model to evaluate (default: the preset's model.name)")
    parser.add_argument("--data", help="a multiple-choice JSONL file of {query, choices, gold} rows: prints acc "
                                       "and acc_norm with 95%% intervals")
    parser.add_argument("--limit", type=int, help="with --data: score only the first N rows")
    run_suite = parser.get_default("func")

    def command(args):
        if args.data:
            return cmd_eval_file(args)
        if args.model:
            args.overrides.append(f"model.name={args.model}")
        return run_suite(args)
    parser.set_defaults(func=command)


def cmd_eval_file(args) -> dict:
    from labkit.evaluate import score_mc_file

    config = load_config(args.preset, args.overrides)
    return score_mc_file(args.model or config.model.name, args.data, limit=args.limit,
                         batch_size=config.eval.batch_size, device=config.model.device,
                         n_resamples=config.eval.bootstrap, seed=config.eval.seed)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except ConfigError as err:
        print(f"labkit: configuration error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"labkit: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    _emit(result, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
