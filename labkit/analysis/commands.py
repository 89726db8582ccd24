"""notebook 05's commands: ``labkit report``, ``labkit experiment`` and ``labkit reference`` (their parsers and
what they run), kept beside the analysis stage so that ``labkit/cli.py`` stays a short list of thin commands."""

from __future__ import annotations

from pathlib import Path

from labkit.config import DEFAULT_PRESET, load_config, parse_override


def cmd_report(args) -> dict:
    """Figures and summary.md of one run; reads the runs only (a report never rewrites a run's config)."""
    from labkit.analysis.registry import collect, load_record
    from labkit.analysis.provenance import run_commands
    from labkit.analysis.report import reports_dir, run_report
    from labkit.runs import Run

    run = Run.existing(args.run)
    current = load_record(run)
    records = [current] if args.only_run else collect()
    folder = Path(args.out) if args.out else reports_dir() / run.name
    command = f"labkit report --run {run.name}" + (" --only-run" if args.only_run else "") + (
        f" --out {args.out}" if args.out else "")
    return run_report(None, run, folder=folder, records=records, commands=[*run_commands(current), command],
                      sweeps=not args.only_run)


# ---------------------------------------------------------------- experiments

def parse_grid(items: list[str], preset: str) -> dict[str, list]:
    """``--grid KEY=V1,V2`` options -> ``{section.field: [typed values]}``; values typed as the config reads
    them (``50`` -> 50, ``true`` -> True), so the run names and configs match a grid written in Python."""
    from labkit.analysis.experiment import ExperimentError

    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ExperimentError(f"--grid {item!r} must look like KEY=V1,V2 (e.g. --grid data.limit=50,150)")
        key, text = parse_override(item)
        if key in grid:
            raise ExperimentError(f"--grid {key} is given twice: give all its values once, comma-separated")
        values = [part.strip() for part in text.split(",")]
        if not all(values):
            raise ExperimentError(f"--grid {item!r} has an empty value: write the values comma-separated, e.g. "
                                  f"{key}=50,150")
        section, name = key.split(".", 1)
        grid[key] = [getattr(getattr(load_config(preset, {key: value}), section), name) for value in values]
    return grid


def parse_seeds(text: str) -> list[int]:
    from labkit.analysis.experiment import ExperimentError

    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ExperimentError(f"--seeds {text!r} must be comma-separated integers, e.g. --seeds 42,7") from None


def build_experiment(args, stages=None):
    """The experiment an ``labkit experiment`` command line names: a reference one, or one from --grid."""
    from labkit.analysis.experiment import Experiment, ExperimentError, Stages
    from labkit.analysis.reference import EXPERIMENTS, reference_experiment

    custom = args.name or args.grid or args.overrides or args.seeds or args.preset
    if args.reference and custom:
        raise ExperimentError(f"{args.reference} is a reference experiment with fixed settings (labkit/analysis/reference.py);"
                              " for other settings give --name NEW --grid KEY=V1,V2 instead of the name")
    if args.reference:
        return reference_experiment(args.reference, stages)
    if not args.name or not args.grid:
        raise ExperimentError(f"name a reference experiment ({', '.join(EXPERIMENTS)}) or give --name NAME and "
                              "--grid KEY=V1,V2 (e.g. --name lr --grid train.lr=1e-3,2e-3 --seeds 42,7)")
    preset = args.preset or DEFAULT_PRESET
    overrides = dict(parse_override(o) for o in args.overrides)
    return Experiment(args.name, parse_grid(args.grid, preset), parse_seeds(args.seeds or "42"), preset, overrides,
                      stages=stages or Stages())


def cmd_experiment(args, stages=None) -> dict:
    """Run or resume the experiment (one progress line per cell), then write its report."""
    from labkit.analysis.reference import EXPERIMENTS, run_experiment_and_report
    from labkit.analysis.provenance import env_prefix

    experiment = build_experiment(args, stages)
    named = EXPERIMENTS.get(args.reference)
    commands = named.commands() if named else [env_prefix() + experiment.command()]
    result = run_experiment_and_report(experiment, commands, named.question if named else None,
                                       run=not args.report_only, folder=Path(args.out) if args.out else None)
    if result["failed"]:
        raise RuntimeError(f"{len(result['failed'])} cell(s) failed ({', '.join(result['failed'])}); their errors "
                           f"are in {experiment.folder / 'results.csv'}; the report at {result['dir']} shows the "
                           "finished cells; run the same command again to retry")
    return result


def cmd_reference(args, stages=None) -> dict:
    from labkit.analysis.reference import EXPERIMENTS, demo_report, reference_experiment, run_reference

    if not args.report_only:
        results = run_reference(args.names or None, stages)
    else:
        names = args.names or ["demo", *EXPERIMENTS]
        results = {n: demo_report() if n == "demo" else reference_experiment(n, stages).report(
            commands=EXPERIMENTS[n].commands(), title=EXPERIMENTS[n].question) for n in names}
    failed = [run for result in results.values() for run in result.get("failed", [])]
    if failed:
        raise RuntimeError(f"{len(failed)} experiment cell(s) failed ({', '.join(failed)}); run again to retry them")
    return {name: result["dir"] for name, result in results.items()}


def add_report_commands(sub) -> None:
    """``labkit report``, ``labkit experiment`` and ``labkit reference`` on the CLI's subparsers."""
    report = sub.add_parser("report", help="notebook 05: figures and tables of a run into reports/<run>/ (reads "
                                           "the runs only)")
    report.add_argument("--run", default="demo", help="run folder name under $LABKIT_RUNS")
    report.add_argument("--only-run", action="store_true",
                        help="cross-run figures from this run alone (default: every run under $LABKIT_RUNS)")
    report.add_argument("--out", help="report folder (default: reports/<run>/, or $LABKIT_REPORTS/<run>/)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)

    experiment = sub.add_parser(
        "experiment", help="run or resume a grid of runs x seeds, then write its report to reports/<name>/",
        description="Either a reference experiment by name (see labkit/analysis/reference.py), or your own: --name NAME "
                    "--grid KEY=V1,V2 [--grid KEY2=...] [--seeds 42,7] [--preset P] [--set KEY=VALUE]. Finished "
                    "cells are skipped, so the same command resumes after an interruption.")
    experiment.add_argument("reference", nargs="?", help="a reference experiment: data-size or size-vs-tuning")
    experiment.add_argument("--name", help="name of your own experiment (runs are <name>-<setting>_<value>-s<seed>)")
    experiment.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                            help="a setting and its values (one or two --grid options)")
    experiment.add_argument("--seeds", help="comma-separated seeds (default 42)")
    experiment.add_argument("--preset", help=f"preset (default {DEFAULT_PRESET})")
    experiment.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="a setting for every cell")
    experiment.add_argument("--report-only", action="store_true", help="write the report of the finished cells; "
                                                                       "run nothing")
    experiment.add_argument("--out", help="report folder (default: reports/<name>/)")
    experiment.add_argument("--json", action="store_true")
    experiment.set_defaults(func=cmd_experiment)

    reference = sub.add_parser("reference", help="run or resume the reference runs (demo, data-size, "
                                                 "size-vs-tuning) in order and write their reports")
    reference.add_argument("names", nargs="*", help="only these (default: all, in order)")
    reference.add_argument("--report-only", action="store_true", help="write the reports; run nothing")
    reference.add_argument("--json", action="store_true")
    reference.set_defaults(func=cmd_reference)
