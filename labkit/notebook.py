"""What the first code cell of every notebook calls: resolve the config, open the run, seed, print the banner."""

from __future__ import annotations

from labkit.config import Config, load_config
from labkit.env import banner, import_unsloth_early, seed_everything
from labkit.runs import Run


def start(preset: str, run_name: str, overrides: list[str] | dict | None = None) -> tuple[Config, Run]:
    """Resolve ``preset`` + ``overrides``, open ``runs/<run_name>/`` (recording the config), seed, print the banner.

    Each notebook calls this itself, so a notebook works after a kernel restart from the files alone.
    """
    config = load_config(preset, overrides)
    import_unsloth_early(config.model.backend)  # on a GPU with Unsloth: before anything imports transformers
    run = Run.open(run_name, config)
    seed_everything(config.train.seed)
    print(banner(seed=config.train.seed))
    print(f"preset:   {preset}" + (f" (overrides: {', '.join(map(str, overrides))})" if overrides else ""))
    print(f"run:      {run.dir}")
    return config, run
