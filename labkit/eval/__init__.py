"""Notebook 04, evaluation: pure metrics with reference parity, multiple-choice scoring, the suites, the judge,
bootstrap intervals and the verdict base vs fine-tuned."""

from labkit.lazy import lazy_exports

_EXPORTS = {
    "run_evaluation": "evaluate", "summary_table": "evaluate", "verdict": "evaluate", "examples": "evaluate",
    "load_summary": "evaluate", "load_records": "evaluate", "score_mc_file": "standalone",
    "score_suite": "standalone",
    "EvalSetupError": "evaluate",
    "plot_intervals": "plots", "retention_table": "tables", "knowledge_line": "verdicts",
    "score_multiple_choice": "mcscore", "bootstrap_ci": "metrics",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
