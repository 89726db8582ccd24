"""Fits or not, why, and the cheapest changes that make a run fit (each re-planned, so its effect is predicted)."""

from __future__ import annotations

from labkit.config import Config, ConfigError
from labkit.train.planner.predict import ALLOCATOR_MARGIN, CUDA_CONTEXT_GIB, predict, with_changes
from labkit.train.planner.specs import GpuSpec


def needed_gib(result: dict, spec: GpuSpec | None) -> float:
    """Device memory a run needs: the peak plus allocator slack plus, on a GPU, the CUDA context."""
    if spec is None:
        return result["ram"]["peak_gib"]
    return result["memory"]["peak_gib"] * (1 + ALLOCATOR_MARGIN) + CUDA_CONTEXT_GIB


def available_gib(spec: GpuSpec | None) -> float | None:
    if spec is not None:
        return spec.memory_gib
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().total / 2**30


def blockers(cfg: Config, spec: GpuSpec | None) -> list[str]:
    if spec is not None and not spec.bf16 and cfg.model.dtype == "bfloat16":
        return [f"the {spec.name} has no bf16: model.dtype=bfloat16 cannot train there (model.dtype=auto picks fp16)"]
    return []


def _fits(cfg: Config, result: dict, spec: GpuSpec | None) -> bool:
    available = available_gib(spec)
    return not blockers(cfg, spec) and (available is None or needed_gib(result, spec) <= available)


def _why(result: dict, spec: GpuSpec | None, available: float | None) -> str:
    mem, ram = result["memory"], result["ram"]
    if spec is None:
        where = "RAM"
        top = ram["parts_gib"]
    else:
        where = f"{spec.name} memory"
        top = mem["training_parts_gib"] if mem["training_step_gib"] >= mem["evaluation_gib"] else \
            mem["evaluation_parts_gib"]
    largest = sorted(top.items(), key=lambda kv: -kv[1])[:3]
    parts = ", ".join(f"{k} {v:.2f}" for k, v in largest)
    need = needed_gib(result, spec)
    have = f"{available:.1f} GiB" if available is not None else "unknown"
    return (f"needs {need:.1f} GiB of {where} ({have} there): training step {mem['training_step_gib']:.2f} GiB, "
            f"evaluation {mem['evaluation_gib']:.2f} GiB; largest parts (GiB): {parts}")


def candidate_changes(cfg: Config, spec: GpuSpec | None) -> list[dict]:
    """Single changes, cheapest kind first; batch changes keep the global batch (batch x accumulation)."""
    t, d, m = cfg.train, cfg.data, cfg.model
    out: list[dict] = []
    if blockers(cfg, spec):
        out.append({"model.dtype": "auto"})
    fix = {"model.dtype": "auto"} if blockers(cfg, spec) else {}
    batch = t.batch_size
    while batch > 1:
        batch //= 2
        out.append({**fix, "train.batch_size": batch, "train.grad_accum": t.grad_accum * t.batch_size // batch})
    if not t.gradient_checkpointing:
        out.append({**fix, "train.gradient_checkpointing": True})
    if not m.load_in_4bit and spec is not None:
        out.append({**fix, "model.load_in_4bit": True})
    if t.optim not in ("adamw_8bit", "paged_adamw_8bit", "adamw_bnb_8bit") and spec is not None:
        out.append({**fix, "train.optim": "adamw_8bit"})
    length = d.max_seq_length
    while length > 256:
        length //= 2
        out.append({**fix, "data.max_seq_length": length})
    return out


def _effect(cfg: Config, changes: dict, base: dict, spec: GpuSpec | None, run: str | None) -> dict | None:
    try:
        new_cfg = with_changes(cfg, changes)
        new = predict(new_cfg, spec, run)
    except ConfigError:
        return None
    before, after = base["speed"]["step_s"], new["speed"]["step_s"]
    return {"set": changes, "fits": _fits(new_cfg, new, spec), "needed_gib": round(needed_gib(new, spec), 2),
            "peak_gib": new["memory"]["peak_gib"] if spec is not None else new["ram"]["peak_gib"],
            "time_change": round(after / before - 1, 3) if before else None,
            "changes_training": any(k.startswith(("data.max_seq_length", "model.load_in_4bit")) for k in changes)}


def verdict(cfg: Config, result: dict, spec: GpuSpec | None, run: str | None = None) -> dict:
    """``{"fits", "why", "changes"}``: changes are tried one at a time, then combined, cheapest first
    (changes that keep the training the same before those that change it, then by predicted time)."""
    available = available_gib(spec)
    fits = _fits(cfg, result, spec)
    why = "; ".join(blockers(cfg, spec) + [_why(result, spec, available)])
    out = {"fits": fits, "why": why, "needed_gib": round(needed_gib(result, spec), 2), "available_gib": available,
           "changes": []}
    if fits:
        return out
    tried = [e for e in (_effect(cfg, c, result, spec, run) for c in candidate_changes(cfg, spec)) if e]
    good = [e for e in tried if e["fits"]]
    if not good:  # combine: every memory-saving change at once, then the shorter sequences one by one
        combo = {k: v for e in tried if not _shortens(e) for k, v in e["set"].items()}
        for e in [None, *[e for e in tried if _shortens(e)]]:
            changes = {**combo, **(e["set"] if e else {})}
            effect = _effect(cfg, changes, result, spec, run)
            if effect and effect["fits"]:
                good = [effect]
                break
    fix_only = [e for e in good if e["set"] == {"model.dtype": "auto"}]
    if fix_only:  # beside the dtype fix, list only what saves memory on top of it
        good = fix_only + [e for e in good if e["needed_gib"] < fix_only[0]["needed_gib"]]
    out["changes"] = _one_per_kind(good)
    return out


def _one_per_kind(effects: list[dict]) -> list[dict]:
    """The first fitting change of each kind (candidates come largest batch / longest sequence first), kinds that
    keep the training the same first, then by predicted time."""
    chosen: dict[frozenset, dict] = {}
    for effect in effects:
        kind = frozenset(k for k in effect["set"] if k != "train.grad_accum")
        chosen.setdefault(kind, effect)
    return sorted(chosen.values(), key=lambda e: (e["changes_training"], e["time_change"] or 0))


def _shortens(effect: dict) -> bool:
    return "data.max_seq_length" in effect["set"]


# ------------------------------------------------------------------ text

def render(result: dict) -> str:
    """The plan as a few lines of text (what ``labkit plan`` and notebook 02 print)."""
    mem, ram, speed, v = result["memory"], result["ram"], result["speed"], result["verdict"]
    s = result["setup"]
    where = result["device"] + ("" if result["measured_device"] else " (not measured here: scaled from the H200)")
    lines = [f"plan for {result['model']['name']} on {where}: {s['backend']}, {s['dtype']}"
             f"{', 4-bit' if s['load_in_4bit'] else ''}, micro-batch {s['micro_batch']} x {s['max_seq_length']} "
             f"tokens, accumulation {s['grad_accum']}, checkpointing {'on' if s['gradient_checkpointing'] else 'off'}",
             f"  peak memory, training step: {mem['training_step_gib']:.2f} GiB = " + _parts(mem["training_parts_gib"]),
             f"  peak memory, evaluation:    {mem['evaluation_gib']:.2f} GiB = " + _parts(mem["evaluation_parts_gib"]),
             f"  peak RAM: {ram['peak_gib']:.2f} GiB = " + _parts(ram["parts_gib"]),
             f"  speed: {speed['tokens_per_s']:,.0f} tokens/s, {speed['step_s']:.2f} s a step of "
             f"{speed['tokens_per_step']:,} tokens; " + _time(speed)]
    disk, export = result["disk"], result["export"]
    lines.append(f"  disk: checkpoints {disk['checkpoints_gb']:.2f} GB ({disk['checkpoints_kept']} kept), adapter "
                 f"{disk['adapter_gb']:.2f} GB, merged 16-bit {disk['merged_16bit_gb']:.1f} GB, GGUF f16 / q8_0 / "
                 f"q4_k_m {disk['gguf_f16_gb']:.1f} / {disk['gguf_q8_0_gb']:.1f} / {disk['gguf_q4_k_m_gb']:.1f} GB; "
                 f"export RAM {export['merge_ram_gb']:.1f} GB (streaming merge), "
                 f"{export['parity_check_ram_gb']:.1f} GB (parity check)")
    lines.append(("FITS: " if v["fits"] else "DOES NOT FIT: ") + v["why"])
    for change in v["changes"]:
        settings = " ".join(f"--set {k}={_value(x)}" for k, x in change["set"].items())
        time = f"{change['time_change']:+.0%} time" if change["time_change"] is not None else ""
        lines.append(f"  change: {settings} -> needs {change['needed_gib']:.1f} GiB, {time}")
    if not v["fits"] and not v["changes"]:
        lines.append("  no single change or combination tried makes it fit: use a bigger device or a smaller model")
    return "\n".join(lines)


def _parts(parts: dict) -> str:
    return " + ".join(f"{k} {v:.2f}" for k, v in parts.items() if v)


def _value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _time(speed: dict) -> str:
    epoch = "epoch time unknown (hub data without data.limit: run notebook 01)"
    if speed["epoch_h"] is not None:
        epoch = f"{speed['epoch_h']:.2f} h an epoch ({speed['steps_per_epoch']} steps)"
    run = f", this run {speed['run_h']:.2f} h ({speed['steps_this_run']} steps)" if speed["run_h"] is not None else ""
    return f"{epoch}{run}; data: {speed['data_from']}"

