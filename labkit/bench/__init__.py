"""Benchmarks (run as scripts: python -m labkit.bench.<name>)."""
