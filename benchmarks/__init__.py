"""Benchmarks: one script per figure the README claims; run from the repository root as
``python -m benchmarks.<name>`` (a developer's folder like tests/, not part of the installed package)."""
