"""The reference runs whose reports are committed under ``reports/``, defined in one place.

``make reference`` (= ``labkit reference`` with the reference folders) runs them in this order and is
resumable: the cpu-demo run is skipped once all its notebooks have finished, and an experiment skips its
finished cells. Every step ends by (re)writing its report:

* ``demo``: the cpu-demo run (``labkit notebooks --preset cpu-demo --run demo``) -> ``reports/cpu-demo/``
* ``data-size``: training rows per source 50 / 150 / 400, seeds 42 and 7 -> ``reports/data-size/``
* ``size-vs-tuning``: SmolLM2-135M vs Gemma 3 270M, base and fine-tuned -> ``reports/size-vs-tuning/``
* ``seeds-data-size``: the seed write-ups' design, data sizes 1x / 2x / 3x x three seeds -> ``reports/seeds-data-size/``
* ``lora-vs-rslora``: LoRA rank 4 / 16 / 64 with both scalings, seeds 42 and 7 -> ``reports/lora-vs-rslora/``
  (validation loss by rank answers it, so its cells skip the task evaluation: 12 cells of about 6 instead of 9 min)

The grids over data sizes and seeds validate on one fixed validation set (``data.val_rows``, carved before
``data.limit`` with its own seed), so their validation losses differ only by what the grid varies.

The definitions below must not change once cells have finished: a changed config makes a finished cell
stale (:meth:`labkit.analysis.experiment.Experiment.is_done` refuses it) instead of silently mixing settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.analysis.experiment import Experiment, ExperimentError, Stages, skip_evaluation

# Where the committed reference runs live (the Makefile's `reference` target sets these).
REFERENCE_ENV = {"LABKIT_RUNS": "~/.labkit/reference/runs", "LABKIT_EXPERIMENTS": "~/.labkit/reference/experiments"}
ENV_PREFIX = " ".join(f"{key}={value}" for key, value in REFERENCE_ENV.items())
MAKE_REFERENCE = "make reference   # all reference runs, or only this one:"


@dataclass(frozen=True)
class ReferenceExperiment:
    name: str
    question: str
    grid: tuple[tuple[str, tuple], ...]   # (setting, values): a tuple so the definition cannot be changed
    seeds: tuple[int, ...]
    preset: str = "cpu-demo"
    overrides: tuple[tuple[str, object], ...] = ()   # settings every cell shares
    evaluate: bool = True                 # False: the question is answered by validation loss (skip_evaluation)

    def experiment(self, stages: Stages | None = None) -> Experiment:
        default = Stages() if self.evaluate else Stages(evaluate=skip_evaluation)
        return Experiment(self.name, {key: list(values) for key, values in self.grid}, list(self.seeds),
                          self.preset, dict(self.overrides), stages=stages or default)

    def commands(self) -> list[str]:
        return [MAKE_REFERENCE, f"{ENV_PREFIX} labkit experiment {self.name}"]


@dataclass(frozen=True)
class ReferenceRun:
    """A single run made by executing the notebook series; its report only uses this run's records."""

    name: str
    preset: str
    report: str                           # folder under reports/

    def run_command(self) -> str:
        return f"labkit notebooks --preset {self.preset} --run {self.name}"

    def report_command(self) -> str:
        return f"labkit report --run {self.name} --only-run --out reports/{self.report}"

    def commands(self) -> list[str]:
        return [MAKE_REFERENCE, f"{ENV_PREFIX} {self.run_command()}",
                f"{ENV_PREFIX} {self.report_command()}"]


DEMO = ReferenceRun("demo", "cpu-demo", "cpu-demo")
# One validation set for every cell: 20 rows of each project source (80 in all), whatever data.limit and the seed.
FIXED_VALIDATION = (("data.val_rows", 20), ("data.val_seed", 0))
EXPERIMENTS = {e.name: e for e in (
    ReferenceExperiment("data-size", "How do quality and validation loss change with the number of training rows?",
                        (("data.limit", (50, 150, 400)),), (42, 7), overrides=FIXED_VALIDATION),
    ReferenceExperiment("size-vs-tuning", "What does fine-tuning add to a 135M and a 270M model?",
                        (("model.name", ("smollm2-135m-instruct", "gemma3-270m")),), (42,)),
    ReferenceExperiment("seeds-data-size", "The seed write-ups' design: does tripling the data help, beyond the spread "
                        "of three seeds (mean ± std of ROUGE and the task metrics)?",
                        (("data.limit", (100, 200, 300)),), (42, 7, 1234), overrides=FIXED_VALIDATION),
    ReferenceExperiment("lora-vs-rslora", "Does rank-stabilised scaling (alpha / sqrt(r)) keep high LoRA ranks "
                        "useful where plain scaling (alpha / r) fades?",
                        (("lora.r", (4, 16, 64)), ("lora.use_rslora", (False, True))), (42, 7),
                        overrides=FIXED_VALIDATION, evaluate=False),
)}
ORDER = (DEMO.name, *EXPERIMENTS)


def reference_experiment(name: str, stages: Stages | None = None) -> Experiment:
    """The named reference experiment (``data-size``, ``size-vs-tuning``)."""
    if name not in EXPERIMENTS:
        raise ExperimentError(f"no reference experiment {name!r}: choose one of {', '.join(EXPERIMENTS)}, or define "
                              "your own with --name NAME --grid KEY=V1,V2")
    return EXPERIMENTS[name].experiment(stages)


def demo_finished(root: Path | None = None) -> bool:
    """True when every notebook of the series has run into the demo run (``notebooks.json`` lists them all)."""
    from labkit.nbrun import notebook_paths
    from labkit.runs import read_json, runs_root

    done = (root or runs_root()) / DEMO.name / "notebooks.json"
    if not done.exists():
        return False
    finished = {entry["notebook"] for entry in read_json(done)}
    return {path.name for path in notebook_paths()} <= finished


def run_demo(report_folder: Path | None = None) -> dict:
    """Execute the notebooks into the demo run unless they have all finished, then write its report."""
    from labkit.config import load_config
    from labkit.nbrun import run_notebooks
    from labkit.runs import Run

    if demo_finished():
        print(f"labkit: reference run {DEMO.name} has finished all its notebooks; writing its report only")
    else:
        run_notebooks(DEMO.preset, Run.open(DEMO.name, load_config(DEMO.preset)))
    return demo_report(report_folder)


def demo_report(folder: Path | None = None) -> dict:
    """The cpu-demo report from the demo run's own records (not from the other runs under the runs root)."""
    from labkit.analysis.registry import load_record
    from labkit.analysis.report import reports_dir, run_report
    from labkit.runs import Run

    run = Run.existing(DEMO.name)
    return run_report(None, run, folder=folder or reports_dir() / DEMO.report, records=[load_record(run)],
                      commands=DEMO.commands(), sweeps=False)


def run_reference(names: list[str] | None = None, stages: Stages | None = None) -> dict[str, dict]:
    """Run (or resume) the named reference runs in :data:`ORDER` and write their reports; a failed
    experiment cell does not stop the others (run again to retry it). Returns name -> report result."""
    unknown = [n for n in names or [] if n not in ORDER]
    if unknown:
        raise ExperimentError(f"unknown reference run(s) {unknown}: choose from {', '.join(ORDER)}")
    results = {}
    for name in [n for n in ORDER if not names or n in names]:
        print(f"labkit: reference {name}", flush=True)
        if name == DEMO.name:
            results[name] = run_demo()
        else:
            results[name] = run_experiment_and_report(reference_experiment(name, stages),
                                                      EXPERIMENTS[name].commands(), EXPERIMENTS[name].question)
    return results


def run_experiment_and_report(experiment: Experiment, commands: list[str] | None = None, title: str | None = None,
                              run: bool = True, folder: Path | None = None) -> dict:
    """Run the experiment's unfinished cells (errors recorded, the rest go on), then write its report; the
    result says which cells failed."""
    table = experiment.run(on_error="continue") if run else None
    result = experiment.report(folder=folder, commands=commands, title=title)
    failed = [] if table is None else list(table.loc[table["status"] == "failed", "run"])
    return {**result, "failed": failed}
