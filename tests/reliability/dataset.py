"""The shared x-education dataset, found beside the repository (or a worktree of it)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATASET = next(
    (
        found
        for parent in ROOT.parents
        if (found := parent / "shared" / "data" / "x-education-leads.csv").exists()
    ),
    None,
)


def dataset_lines(rows: int) -> list[bytes]:
    """The header and the first `rows` data lines, as bytes with their line ends."""
    if DATASET is None:
        pytest.skip("the shared dataset is not here")
    with DATASET.open("rb") as fh:
        return [fh.readline() for _ in range(rows + 1)]
