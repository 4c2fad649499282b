"""Duration histograms in log-spaced buckets (DDSketch), for the velocity rollups.

A duration d > 0 falls in bucket ceil(ln d / ln γ), γ = (1 + α) / (1 − α), whose
representative 2γ^i / (γ + 1) is within α = 1% of every value in it; zero has a
bucket of its own. A percentile of merged buckets interpolates between the
representatives of the two ranks around (n − 1) · p, as percentile_cont does
between the values, so it is within 1% of the exact figure.
"""

from __future__ import annotations

import math

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LN_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -1_000_000  # below every real bucket (1 µs is bucket −691)


def bucket_sql(seconds: str) -> str:
    """SQL: the bucket of a duration in seconds (NULL stays NULL)."""
    return (
        f"CASE WHEN ({seconds}) <= 0 THEN {ZERO_BUCKET}"
        f" ELSE CAST(CEILING(LN({seconds}) / {LN_GAMMA!r}) AS INTEGER) END"
    )


def bucket_value(bucket: int) -> float:
    return 0.0 if bucket == ZERO_BUCKET else 2 * GAMMA**bucket / (GAMMA + 1)


def percentile_of(ranked: list[tuple[int, int, int]], total: int, p: int) -> float | None:
    """Interpolated p-th percentile of `total` values from (bucket, values before
    it, values in it) rows, ascending; rows holding neither rank around
    (total − 1) · p may be left out."""
    if not total:
        return None
    pos = (total - 1) * p / 100
    low = math.floor(pos)
    frac = pos - low

    def at(rank: int) -> float:
        return next(bucket_value(b) for b, before, n in ranked if before <= rank < before + n)

    value = at(low)
    return value + (at(low + 1) - value) * frac if frac else value
