"""How a report was made: the commands that reproduce its runs, and the preset, machine, dates and library
versions they ran with (the "How to reproduce" and "Setup" sections of every ``summary.md``)."""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from labkit.runs import read_json

DONE = "experiment_done.json"   # the marker an experiment writes into each finished run


def short_value(value: Any) -> str:
    """A setting's value as it is written on a command line (``a,b`` for a list)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _run_file(record: dict, *parts: str) -> Path:
    return Path(record["dir"]).joinpath(*parts)


def _done_marker(record: dict) -> dict:
    path = _run_file(record, DONE)
    return read_json(path) if path.exists() else {}


def _finished_at(record: dict) -> float | None:
    """When the run finished: its experiment done marker, else when its last stage output was written."""
    if _done_marker(record).get("finished"):
        return _done_marker(record)["finished"]
    for parts in (("eval", "summary.json"), ("train_summary.json",)):
        if _run_file(record, *parts).exists():
            return _run_file(record, *parts).stat().st_mtime
    return None


def run_seconds(record: dict) -> float | None:
    """A run's own time: the experiment cell's (prepare + train + evaluate), else the notebooks' sum, else
    the training time."""
    if _done_marker(record).get("seconds") is not None:
        return float(_done_marker(record)["seconds"])
    if _run_file(record, "notebooks.json").exists():
        return float(sum(n.get("seconds") or 0 for n in read_json(_run_file(record, "notebooks.json"))))
    return (record.get("train_summary") or {}).get("wall_time_s")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def _describe_machine(info: dict) -> str:
    model = f" ({info['cpu_model']})" if info.get("cpu_model") else ""
    parts = [f"{info.get('cpu_cores')} CPU cores{model}", f"{info.get('ram_gib')} GiB RAM"]
    if info.get("torch_threads"):
        parts.append(f"{info['torch_threads']} torch threads")
    if info.get("gpu"):
        parts.append(f"GPU {info['gpu']}")
    return ", ".join(parts) + f"; {info.get('platform')}"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def env_prefix(names: Iterable[str] = ("LABKIT_RUNS", "LABKIT_EXPERIMENTS")) -> str:
    """``LABKIT_RUNS=... `` for the folder variables that are set (home written as ``~``), to put before a
    command line so that it finds the same runs."""
    home = str(Path.home())
    values = {name: os.environ[name] for name in names if os.environ.get(name)}
    parts = [f"{name}={'~' + value[len(home):] if value.startswith(home + os.sep) else value}"
             for name, value in values.items()]
    return " ".join(parts) + " " if parts else ""


def run_commands(record: dict) -> list[str]:
    """The command that made a run, as far as its files tell: the notebook series, an experiment, or the
    stages one by one (with ``--set`` for every setting that differs from its preset)."""
    sets = "".join(f" --set {k}={short_value(v)}" for k, v in record["changed"].items())
    if _run_file(record, "notebooks.json").exists():
        return [f"{env_prefix()}labkit notebooks --preset {record['preset']} --run {record['name']}{sets}"]
    if _done_marker(record).get("experiment"):
        experiment = _done_marker(record)["experiment"]
        return [f"{env_prefix()}labkit experiment {experiment}   # this run is one of its cells"]
    return [f"{env_prefix()}labkit {stage} --preset {record['preset']} --run {record['name']}{sets}"
            for stage in ("prepare", "train", "eval")]


def provenance_lines(records: list[dict], commands: list[str]) -> list[str]:
    """Markdown: the commands that reproduce the report, then the preset, machine, dates and library versions."""
    recorded = [m["machine"] for r in records if (m := _done_marker(r)).get("machine")]
    machine_text = (f"{_describe_machine(recorded[-1])} (recorded by the runs)" if recorded else
                    f"{_describe_machine(machine())} (the computer that wrote this report; the runs did not "
                    "record theirs)")
    devices = sorted({str((r.get("train_summary") or {}).get("device")) for r in records} - {"None"})
    finished = sorted(t for r in records if (t := _finished_at(r)))
    seconds = [t for r in records if (t := run_seconds(r))]
    lines = ["## How to reproduce", "", "```bash", *commands, "```", "", "## Setup", "",
             f"- Preset: {', '.join(sorted({r['preset'] for r in records})) or '?'}",
             f"- Machine: {machine_text}"]
    if devices:
        lines.append(f"- Training device: {', '.join(devices)}")
    if finished:
        lines.append(f"- Runs finished: {_utc(finished[0])}" + (f" to {_utc(finished[-1])}" if len(finished) > 1
                                                                  else ""))
    if seconds:
        lines.append(f"- Run time: {_duration(sum(seconds))} in all ({len(seconds)} run(s), one after another)")
    versions = _run_file(records[0], "versions.json") if records else None
    if versions and versions.exists():
        names = ("labkit", "torch", "transformers", "trl", "peft", "python")
        found = read_json(versions)
        lines.append("- Libraries: " + ", ".join(f"{n} {found[n]}" for n in names if found.get(n)))
    lines += [f"- Report written: {_utc(time.time())}", ""]
    return lines


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what ``platform`` knows). Two machines with the same
    core count can differ 3-4x in CPU training speed (AVX-512 or not), so reports name it."""
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    return platform.processor() or None


def machine() -> dict:
    """The machine a cell ran on (recorded in its done marker; the report prints it)."""
    import psutil  # a dependency of accelerate, which labkit needs anyway

    info = {"cpu_cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_model": cpu_model()}
    torch = sys.modules.get("torch")  # loaded by the training stage; not imported here just to ask
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info
