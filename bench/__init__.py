"""Benchmarks: scripts that print their figures (see bench/common.py)."""
