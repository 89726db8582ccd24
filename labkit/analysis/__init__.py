"""Notebook 05, analysis: the run registry, figures and reports, experiments over grids and seeds, and the
committed reference runs."""

from labkit.lazy import lazy_exports

_EXPORTS = {
    "collect": "registry", "describe_missing": "registry", "load_record": "registry", "runs_table": "registry",
    "Experiment": "experiment", "ExperimentError": "experiment",
    "run_report": "report", "reports_dir": "report",
    "plot_loss_curves": "figures", "plot_metric_bars": "figures", "plot_throughput_memory": "figures",
    "plot_model_size": "figures", "plot_data_size": "sweeps", "plot_lora_vs_rslora": "sweeps",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
