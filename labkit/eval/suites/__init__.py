"""Evaluation suites: ``demo`` (the project's own held-out data) and public benchmarks from the hub, each defined
once in :mod:`labkit.eval.suites.registry` (hub id, revision, split, lm-evaluation-harness prompt) with its
conversion in :mod:`labkit.eval.suites.convert`; :mod:`labkit.eval.suites.load` reads them."""

from labkit.lazy import lazy_exports

_EXPORTS = {
    "SuiteData": "load", "SuiteError": "load", "load_suite": "load",
    "SUITES": "registry", "Suite": "registry", "label_of": "registry", "scored_as": "registry",
    "suite_of_category": "registry",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
