"""The registry and the report on FABRICATED runs: fake config, training summary, log and evaluation files."""

from __future__ import annotations

import math
import os
import random
import statistics
from pathlib import Path

import pytest

from labkit.analysis import figures, registry, report, sweeps
from labkit.config import load_config
from labkit.eval.evaluate import build_summary
from labkit.runs import Run, append_jsonl, atomic_write_json

CATEGORIES = ("arithmetic", "reading_qa", "general")


@pytest.fixture(autouse=True)
def reports_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_REPORTS", str(tmp_path / "reports"))


def fake_loss(limit: int, seed: int, rslora: bool = False, r: int = 4) -> float:
    """A made-up final validation loss that falls with data size and differs per seed."""
    return 2.0 - 0.2 * math.log(limit) + 0.01 * seed - (0.05 * math.log2(r) if rslora else 0.0)


def fake_eval_records(seed: int, skill: float, n: int = 8) -> dict[str, list[dict]]:
    """Per-example scores as the evaluation stage writes them; ``skill`` is the share of correct answers."""
    rng = random.Random(seed)
    hits = [float(rng.random() < skill) for _ in range(n)]
    return {"arithmetic": [{"id": f"a{i}", "accuracy": h} for i, h in enumerate(hits)],
            "reading_qa": [{"id": f"q{i}", "exact_match": h, "f1": (h + skill) / 2} for i, h in enumerate(hits)],
            "general": [{"id": f"g{i}", "rouge1": skill, "rouge2": skill / 2, "rougeL": skill, "rougeLsum": skill,
                         "nll": 40 * (1 - skill / 2), "n_tokens": 20} for i in range(n)]}


def fake_run(root, name: str, overrides: dict, seed: int, *, evaluated: bool = True, steps: int = 4,
             params: int = 1_000_000) -> Run:
    config = load_config("smoke", {**overrides, "train.seed": seed})
    run = Run.open(name, config, root=root)
    fake_outputs(config, run, evaluated=evaluated, steps=steps, params=params)
    return run


def fake_outputs(config, run: Run, *, evaluated: bool = True, steps: int = 4, params: int = 1_000_000) -> None:
    """What training and evaluation write, fabricated: log, train summary, evaluation summary."""
    seed = config.train.seed
    final = fake_loss(config.data.limit, seed, config.lora.use_rslora, config.lora.r)
    for step in range(1, steps + 1):
        append_jsonl(run.path("logs", "train_log.jsonl"),
                     {"step": step, "kind": "train", "loss": 3.0 - 0.2 * step, "learning_rate": 1e-3,
                      "grad_norm": 1.0, "tokens_per_s": 500.0, "step_time": 0.1, "rss_mb": 800.0})
        if step % 2 == 0:
            append_jsonl(run.path("logs", "train_log.jsonl"), {"step": step, "kind": "eval", "eval_loss": final + 0.1})
    run.path("logs", "train_log.jsonl").open("a").write('{"step": 99, "kind": "tr')  # a torn last line
    run.record("train_summary", {
        "steps": steps, "wall_time_s": 3.0, "tokens_per_s": 400.0 + seed, "peak_rss_mb": 900.0 + seed,
        "peak_gpu_mb": None, "final_train_loss": 2.2, "final_eval_loss": final, "base_eval_loss": 2.5,
        "trainable_params": {"trainable": 1000, "total": params, "share": 1000 / params}})
    if evaluated:
        records = {tag: fake_eval_records(seed, skill) for tag, skill in (("base", 0.3), ("tuned", 0.6))}
        summary = build_summary(records, config, run, notes=[], models={"base": {}, "tuned": {}})
        atomic_write_json(run.path("eval", "summary.json"), summary)


@pytest.fixture()
def runs_root(tmp_path):
    root = tmp_path / "runs"
    for limit in (8, 16, 32):
        for seed in (1, 2):
            fake_run(root, f"size-limit_{limit}-s{seed}", {"data.limit": limit}, seed)
    for rslora in (False, True):
        for r in (4, 16):
            fake_run(root, f"rs-{rslora}-r{r}", {"lora.use_rslora": rslora, "lora.r": r, "data.limit": 64}, 1)
    fake_run(root, "other-model", {"model.name": "smollm2-135m-instruct", "data.limit": 64}, 1, params=135_000_000)
    Run.open("fresh", load_config("smoke"), root=root)  # opened by notebook 01, nothing else yet
    return root


def test_records_read_every_stage_output_and_list_what_is_missing(runs_root):
    records = {r["name"]: r for r in registry.collect(runs_root)}
    size = records["size-limit_8-s1"]
    assert size["changed"] == {"data.limit": 8, "train.seed": 1}
    assert len([row for row in size["train_log"] if row["kind"] == "train"]) == 4  # torn line skipped
    assert {(r["model"], r["category"]) for r in size["eval_rows"]} == {(m, c) for m in ("base", "tuned")
                                                                       for c in CATEGORIES}
    tuned_f1 = next(r for r in size["eval_rows"] if r["model"] == "tuned" and r["metric"] == "f1")
    assert tuned_f1["mean"] == pytest.approx(statistics.mean(
        row["f1"] for row in fake_eval_records(1, 0.6)["reading_qa"]))
    assert tuned_f1["low"] <= tuned_f1["mean"] <= tuned_f1["high"]
    perplexity = next(p for p in size["paired_rows"] if p["metric"] == "perplexity")
    assert perplexity["higher_is_better"] is False and perplexity["mean_diff"] < 0
    assert size["missing"] == []
    assert len(records["fresh"]["missing"]) == 3
    assert "notebook 04" in registry.describe_missing([records["fresh"]])


def test_runs_table_has_one_row_per_run_and_the_settings_that_differ(runs_root):
    table = registry.runs_table(root=runs_root)
    assert len(table) == 12
    assert {"data.limit", "lora.r", "lora.use_rslora", "train.seed", "model.name"} <= set(table.columns)
    assert "lora.alpha" not in table.columns  # the same in every run
    row = table.set_index("run").loc["size-limit_16-s2"]
    assert row["final_eval_loss"] == pytest.approx(fake_loss(16, 2))
    assert row["tuned/general/rouge2"] == pytest.approx(0.3)


def test_runs_table_of_an_empty_root_is_empty_not_an_error(tmp_path, capsys):
    assert registry.runs_table(root=tmp_path / "nothing").empty
    assert "no runs" in capsys.readouterr().out


def test_data_size_sweep_averages_seeds_per_limit(runs_root):
    records = registry.collect(runs_root)
    table = sweeps.sweep_table(records, "data.limit", "final_eval_loss")
    sized = table[table["x"].isin([8, 16, 32])]
    assert len(sized) == 3 and set(sized["n"]) == {2}
    point = sized.set_index("x").loc[16]
    expected = [fake_loss(16, 1), fake_loss(16, 2)]
    assert point["mean"] == pytest.approx(statistics.mean(expected))
    assert point["std"] == pytest.approx(statistics.stdev(expected))


def test_lora_vs_rslora_sweep_keeps_variants_apart(runs_root):
    table = sweeps.sweep_table(registry.collect(runs_root), "lora.r", "final_eval_loss", by=["lora.use_rslora"])
    rs = table[table["line"].str.startswith("use_rslora=True")].set_index("x")
    assert rs.loc[16, "mean"] == pytest.approx(fake_loss(64, 1, True, 16))


def test_every_plot_renders_with_labels(runs_root):
    records = registry.collect(runs_root)
    current = next(r for r in records if r["name"] == "size-limit_8-s1")
    figures = report.all_figures(records, current)
    for stem, fig in figures.items():
        assert not getattr(fig, "labkit_no_data", None), stem
        for ax in fig.axes:
            assert ax.get_title() and ax.get_ylabel(), (stem, ax)
    loss_ax = figures["loss_curves"].axes[0]
    assert len(loss_ax.get_lines()) == 3 * 11  # train, validation and base line for each run with a log


def test_plots_without_data_say_so(tmp_path):
    root = tmp_path / "runs"
    Run.open("fresh", load_config("smoke"), root=root)
    records = registry.collect(root)
    for stem, fig in report.all_figures(records, records[0]).items():
        assert fig.labkit_no_data, stem
        assert any("No data" in t.get_text() for t in fig.axes[0].texts)


def test_run_report_writes_png_svg_and_markdown(runs_root, monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_RUNS", str(runs_root))
    run = Run.existing("size-limit_8-s1")
    result = report.run_report(run.config(), run)
    folder = tmp_path / "reports" / "size-limit_8-s1"
    assert result["dir"] == str(folder)
    for stem in ("loss_curves", "metrics", "throughput_memory", "model_size", "data_size", "lora_vs_rslora"):
        for suffix in (".png", ".svg"):
            assert (folder / f"{stem}{suffix}").stat().st_size > 1000, stem
    summary = (folder / "summary.md").read_text()
    assert "| size-limit_8-s1 |" in summary and "![data_size](data_size.png)" in summary
    assert result["skipped"] == {}


def test_run_report_on_a_fresh_run_skips_figures_with_a_note(tmp_path, capsys):
    run = Run.open("fresh", load_config("smoke"))
    result = report.run_report(run.config(), run)
    assert set(result["skipped"]) == {"loss_curves", "metrics", "throughput_memory", "model_size", "data_size",
                                      "lora_vs_rslora"}
    assert result["files"] == [str(tmp_path / "reports" / "fresh" / "summary.md")]
    assert "skipping figure 'metrics'" in capsys.readouterr().out


@pytest.mark.notebooks
def test_inference_and_analysis_notebooks_run_before_any_training(tmp_path):
    """Notebooks 03 and 05 on a run that has no data, adapter or evaluation yet: they say so, and do not fail."""
    import nbformat

    from labkit.nbrun import run_notebooks

    run = Run.open("untrained", load_config("smoke"))
    results = run_notebooks("smoke", run, only=["03", "05"], progress=False)
    texts = []
    for result in results:
        for cell in nbformat.read(result["output"], as_version=4).cells:
            texts += [o.get("text", "") for o in cell.get("outputs", [])]
    output = "\n".join(texts)
    assert "has no adapter yet" in output and "Using 3 fixed prompts" in output
    assert "skipping figure 'metrics'" in output
    assert run.path("inference", "side_by_side.jsonl").exists()
    assert run.path("report", "summary.md").exists()  # notebook 05 writes its report into the run folder


@pytest.mark.notebooks
def test_analysis_notebook_renders_every_plot_from_fabricated_run_records(runs_root):
    """Notebook 05 reads only files that runs wrote: on fabricated runs (no model anywhere) it saves every figure."""
    from labkit.nbrun import run_notebooks

    run = Run.existing("size-limit_8-s1", root=runs_root)
    assert os.environ["LABKIT_RUNS"] == str(runs_root)  # the notebook's kernel sees the fabricated runs
    run_notebooks("smoke", run, overrides=["data.limit=8", "train.seed=1"], only=["05"], progress=False)
    for stem in ("loss_curves", "metrics", "throughput_memory", "model_size", "data_size", "lora_vs_rslora"):
        assert run.path("report", f"{stem}.png").exists() and run.path("report", f"{stem}.svg").exists(), stem
    assert "size-limit_32-s2" in run.path("report", "summary.md").read_text()  # cross-run table: all runs


# ------------------------------------------------------------------ experiment reports

def _errorbar_series(ax) -> dict[str, tuple[list, list, list]]:
    """label -> (x, mean, std) of every error-bar line in a panel."""
    from matplotlib.container import ErrorbarContainer

    series = {}
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line, _, (bars,) = container.lines[0], container.lines[1], container.lines[2]
            xs, ys = (list(v) for v in line.get_data())
            half = [(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
            series[container.get_label()] = (xs, ys, half)
    return series


def test_data_size_figure_has_a_panel_per_quality_measure_with_mean_and_std(runs_root):
    records = registry.collect(runs_root)
    sized = [r for r in records if r["name"].startswith("size-")]
    fig = sweeps.plot_data_size(sized)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["validation loss", "arithmetic: accuracy", "general: rougeL", "reading_qa: f1"]
    reading = _errorbar_series(fig.axes[3])
    assert set(reading) == {"fine-tuned", "base"}
    xs, means, stds = reading["fine-tuned"]
    assert xs == [8, 16, 32]
    per_seed = [statistics.mean(r["f1"] for r in fake_eval_records(seed, 0.6)["reading_qa"])
                for seed in (1, 2)]
    assert means[1] == pytest.approx(statistics.mean(per_seed))
    assert stds[1] == pytest.approx(statistics.stdev(per_seed))
    loss_x, loss_means, _ = _errorbar_series(fig.axes[0])["fine-tuned"]
    assert loss_means[0] == pytest.approx(statistics.mean([fake_loss(8, 1), fake_loss(8, 2)]))
    assert "2 runs per point" in fig._suptitle.get_text()
    single = sweeps.plot_data_size(sized, y="final_eval_loss")  # the one-number form still works
    assert len(single.axes) == 1 and single.axes[0].get_ylabel() == "final eval loss"


def test_model_size_with_one_run_per_model_shows_the_evaluation_interval(runs_root):
    record = next(r for r in registry.collect(runs_root) if r["name"] == "other-model")
    fig = figures.plot_model_size([record])
    reading = next(ax for ax in fig.axes if ax.get_title().startswith("reading_qa"))
    row = next(r for r in record["eval_rows"] if (r["model"], r["metric"]) == ("tuned", "f1"))
    tuned_bar = reading.containers[-1]  # the fine-tuned bars are drawn last
    segment = tuned_bar.errorbar.lines[2][0].get_segments()[0]
    assert (segment[0][1], segment[1][1]) == pytest.approx((row["low"], row["high"]))
    assert "95% interval over evaluation items" in fig._suptitle.get_text()


class FabricatingStages:
    """Experiment stages that write fabricated training and evaluation outputs (no model)."""

    def __init__(self):
        self.trained: list[str] = []

    def stages(self):
        from labkit.analysis.experiment import Stages

        def train(cfg, run):
            self.trained.append(run.name)
            fake_outputs(cfg, run)

        return Stages(lambda cfg, run: None, train, lambda cfg, run: None)


def config_snapshot(root) -> dict[str, tuple[bytes, int]]:
    return {p.parent.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.glob("*/config.json")}


def test_experiment_report_writes_figures_tables_and_how_to_reproduce(tmp_path, runs_root, monkeypatch):
    from labkit.analysis.experiment import Experiment

    monkeypatch.setenv("LABKIT_RUNS", str(runs_root))
    exp = Experiment("ds", {"data.limit": [8, 16]}, [1, 2], "smoke", stages=FabricatingStages().stages())
    exp.run()
    before = config_snapshot(runs_root)
    result = exp.report(commands=["make reference"], title="Does more data help?")
    assert config_snapshot(runs_root) == before  # a report only reads the runs
    folder = tmp_path / "reports" / "ds"
    assert result["dir"] == str(folder) and result["skipped"] == {}
    for stem in ("loss_curves", "throughput_memory", "data_size"):
        for suffix in (".png", ".svg"):
            assert (folder / f"{stem}{suffix}").stat().st_size > 1000, stem
    svg = (folder / "data_size.svg").read_text()
    assert "<dc:date>" not in svg  # no date: a re-made figure does not show up as changed
    summary = (folder / "summary.md").read_text()
    expected_loss = statistics.mean([fake_loss(16, 1), fake_loss(16, 2)])
    spread = statistics.stdev([fake_loss(16, 1), fake_loss(16, 2)])
    assert f"| 16 | fine-tuned | 2 | {expected_loss:.3f} ± {spread:.3f} |" in summary
    assert "| 8 | base | 2 | 2.500 |" in summary  # equal values: one number, no ± 0
    assert "Finished: 4 of 4 runs." in summary and "Does more data help?" in summary
    assert "```bash\nmake reference\n```" in summary
    assert "- Preset: smoke" in summary and "CPU cores" in summary and "GiB RAM" in summary
    assert "Report written: 20" in summary and "Runs finished: 20" in summary
    # only this experiment's runs: the loss curves have one line per experiment run, not per run under the root
    assert "size-limit_8-s1" not in summary
    assert len(figures.plot_loss_curves(registry.collect(runs_root, [c.run_name for c in exp.cells()]))
               .axes[0].get_lines()) == 3 * 4


def test_experiment_report_lists_unfinished_cells(tmp_path, monkeypatch):
    from labkit.analysis.experiment import Experiment

    exp = Experiment("half", {"data.limit": [8, 16]}, [1], "smoke", stages=FabricatingStages().stages())
    exp.run()
    exp2 = Experiment("half", {"data.limit": [8, 16, 32]}, [1], "smoke")
    summary = (Path(exp2.report()["dir"]) / "summary.md").read_text()
    assert "Finished: 2 of 3 runs." in summary and "**Not finished yet**" in summary
    assert "| half-limit_32-s1 | 1 | pending |" in summary


def test_run_report_only_reads_the_run(runs_root):
    before = config_snapshot(runs_root)
    run = Run.existing("size-limit_8-s1", root=runs_root)
    report.run_report(None, run, records=[registry.load_record(run)], commands=["labkit report --run x"])
    assert config_snapshot(runs_root) == before
    assert not run.path("config_history.jsonl").exists()


def test_the_setup_line_names_the_cpu_model(tmp_path):
    from labkit.analysis.provenance import _describe_machine, cpu_model, machine

    line = _describe_machine({"cpu_cores": 2, "ram_gib": 23.5, "cpu_model": "AMD EPYC", "platform": "Linux-x"})
    assert line.startswith("2 CPU cores (AMD EPYC), 23.5 GiB RAM")
    assert _describe_machine({"cpu_cores": 2, "ram_gib": 1.0, "platform": "p"}).startswith("2 CPU cores, 1.0 GiB")
    assert machine()["cpu_model"] == cpu_model()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fma\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
