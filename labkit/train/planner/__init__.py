"""The resource planner (``labkit plan``): will a run fit, how long will it take, and what to change if not.

A plan reads a config and a device (a GPU from :data:`labkit.train.planner.specs.GPUS`, or ``cpu``) and predicts,
each with its parts: peak device memory of a training step and of the evaluation, peak host RAM, tokens/s,
time per epoch, disk, and the RAM of the export; then a verdict and the cheapest changes that make it fit
(:mod:`labkit.train.planner.verdict`). Memory parts are tensor counts (:mod:`labkit.train.planner.memory`); throughput
is a FLOP count times an achieved fraction of the device's peak, measured on an H200 and on 2 CPU cores
(:data:`EFFICIENCY`). ``benchmarks/plan_accuracy.py`` prints predicted against measured for every measured
configuration. Nothing here imports torch unless the device is detected.
"""

from __future__ import annotations

from labkit.config import Config
from labkit.train.planner.predict import predict
from labkit.train.planner.specs import CPU, detect_gpu, get_gpu
from labkit.train.planner.verdict import render, verdict

__all__ = ["plan", "plan_preset", "predict", "show_plan"]


def plan(cfg: Config, gpu: str | None = None, run: str | None = None) -> dict:
    """The plan of ``cfg`` on ``gpu`` (a name in the GPU table or 'cpu'; None: the device present), with its
    verdict and, when it does not fit, the cheapest changes that make it fit."""
    gpu = gpu or detect_gpu()
    spec = None if gpu.lower() == CPU else get_gpu(gpu)
    result = predict(cfg, spec, run)
    result["verdict"] = verdict(cfg, result, spec, run)
    return result


def plan_preset(preset: str, overrides: list[str] | None = None, gpu: str | None = None,
                run: str | None = None) -> dict:
    from labkit.config import load_config

    return plan(load_config(preset, overrides), gpu, run)


def show_plan(cfg: Config, run: str | None = None, gpu: str | None = None) -> dict:
    """Print the plan of ``cfg`` for the device present (or ``gpu``) and return it (notebook 02, before training);
    ``run`` names the run whose notebook-01 statistics give the token counts."""
    result = plan(cfg, gpu, run)
    print(render(result))
    return result
