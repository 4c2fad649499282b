"""Writes on leads: one module per verb family (ingest, capture, import, merge, review)."""
