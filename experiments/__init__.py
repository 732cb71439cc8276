"""Experiments: one module each, a frozen ``Config`` and ``run(config) -> result`` (EXPERIMENTS.md)."""
