"""Measured benchmarks: extraction and learning."""
