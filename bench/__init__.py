"""Benchmark drivers and their results; not part of the installed package."""
