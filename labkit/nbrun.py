"""Execute the notebook series top to bottom with papermill, into the run folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from unittest import mock

from labkit.runs import Run

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


class NotebookFailed(RuntimeError):
    """A cell raised; the message names the notebook, the cell and the error."""


def notebook_paths(folder: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
        if not paths:
            raise ValueError(f"no notebook matches {only}; available: {', '.join(p.stem for p in notebook_paths())}")
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks in {folder}")
    return paths


def run_notebooks(preset: str, run: Run, overrides: list[str] | None = None, only: list[str] | None = None,
                  progress: bool = True, timeout: int | None = None) -> list[dict]:
    """Execute each notebook in order into ``run/notebooks/``; stop at the first cell error."""
    from labkit.stopping import interrupt_children_on_stop

    out_dir = run.path("notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The kernels must open this same run: they inherit LABKIT_RUNS (on Colab this also keeps their first cell from
    # mounting Google Drive, which a kernel without Colab's front end cannot do). A Ctrl-C / SIGTERM reaches the
    # kernel: training saves, then stops.
    with mock.patch.dict(os.environ, LABKIT_RUNS=str(run.dir.parent)), interrupt_children_on_stop():
        results = _execute(notebook_paths(only=only), preset, run, overrides, out_dir, progress, timeout)
    run.record("notebooks", results)
    return results


def _execute(paths: list[Path], preset: str, run: Run, overrides: list[str] | None, out_dir: Path, progress: bool,
             timeout: int | None) -> list[dict]:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    results = []
    for path in paths:
        target = out_dir / path.name
        print(f"labkit: executing {path.name} (preset {preset}, run {run.name}) -> {target}", flush=True)
        started = time.time()
        try:
            pm.execute_notebook(str(path), str(target), parameters={"PRESET": preset, "RUN": run.name,
                                                                    "OVERRIDES": list(overrides or [])},
                                kernel_name="python3", progress_bar=progress, cwd=str(path.parent),
                                execution_timeout=timeout)
        except PapermillExecutionError as err:
            again = ("\nRunning the same command again continues the training from that checkpoint"
                     if err.ename == "TrainingStopped" else "")
            raise NotebookFailed(f"{path.name}: cell {err.exec_count} failed with {err.ename}: {err.evalue}\n"
                                 f"The executed notebook with the error is at {target}{again}") from None
        seconds = round(time.time() - started, 1)
        print(f"labkit: {path.name} done in {seconds} s", flush=True)
        results.append({"notebook": path.name, "output": str(target), "seconds": seconds})
    return results
