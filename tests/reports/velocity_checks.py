"""Comparing velocity figures read from the rollups with the exact ones: counts and
everything else equal, durations (floats) within the rollups' 1% relative error."""

import pytest

from reports.sketch import RELATIVE_ERROR

# The bucket edges are computed in floating point: a hair over 1% at an edge.
TOLERANCE = RELATIVE_ERROR * (1 + 1e-6)


def assert_close(new, old, path="figures"):
    if isinstance(old, dict):
        assert isinstance(new, dict) and new.keys() == old.keys(), path
        for key in old:
            assert_close(new[key], old[key], f"{path}.{key}")
    elif isinstance(old, list | tuple):
        assert isinstance(new, list | tuple) and len(new) == len(old), (path, new, old)
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(old, float) or isinstance(new, float):
        assert new == pytest.approx(old, rel=TOLERANCE, abs=1e-9), (path, new, old)
    else:
        assert new == old, (path, new, old)
