"""Writes of the reports app (the rollup refreshes)."""
