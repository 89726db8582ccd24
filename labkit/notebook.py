"""What the first code cell of every notebook calls: resolve the config, open the run, seed, print the banner."""

from __future__ import annotations

from collections.abc import Iterable

from labkit.colab import runs_on_drive
from labkit.config import Config, load_config
from labkit.env import banner, import_unsloth_early, in_colab, seed_everything
from labkit.runs import Run, check_inputs, runs_root


def start(preset: str, run_name: str, overrides: list[str] | dict | None = None, *, needs: Iterable[str] = (),
          drive: bool | None = None) -> tuple[Config, Run]:
    """Resolve ``preset`` + ``overrides``, open ``runs/<run_name>/`` (recording the config), seed, print the banner.

    Each notebook calls this itself, so a notebook works after a kernel restart from the files alone.

    - ``needs``: what the notebook reads from earlier ones (keys of ``labkit.runs.STAGE_INPUTS``, e.g.
      ``"prepared"``); a missing one stops here with one line that names the notebook that makes it and the path
      looked at, before any model is loaded.
    - ``drive``: on Google Colab the runs go to Google Drive (``labkit.colab``), because each Colab notebook runs in
      its own runtime; ``drive=False`` (or ``LABKIT_DRIVE=0``) keeps them on the runtime's disk.
    """
    config = load_config(preset, overrides)
    on_drive = runs_on_drive(drive)
    check_inputs(runs_root() / run_name, needs, preset)
    import_unsloth_early(config.model.backend)  # on a GPU with Unsloth: before anything imports transformers
    new = not (runs_root() / run_name / "config.json").exists()
    run = Run.open(run_name, config)
    seed_everything(config.train.seed)
    print(banner(seed=config.train.seed))
    print(f"preset:   {preset}" + (f" (overrides: {', '.join(map(str, overrides))})" if overrides else ""))
    print(f"run:      {run.dir}" + (" (new: no earlier notebook wrote to it)" if new else ""))
    print(where_runs_live(on_drive is not None))
    return config, run


def where_runs_live(on_drive: bool) -> str:
    """One line saying where the runs are kept and what that means for the next notebook."""
    if on_drive:
        return (f"runs:     {runs_root()} on Google Drive: the next notebook, in its own Colab runtime, finds this "
                "run there (start(..., drive=False) or LABKIT_DRIVE=0 keeps runs on the runtime's disk)")
    if in_colab():
        return (f"runs:     {runs_root()}, not on Google Drive: a runtime's disk goes with the runtime, and a notebook "
                "opened in another runtime will not see this run (start(..., drive=True) puts runs on Drive)")
    return f"runs:     {runs_root()} (LABKIT_RUNS or LABKIT_HOME move them)"
