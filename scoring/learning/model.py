"""The model behind a suggested rule set, and the figures that judge it.

- A regularized logistic regression (scikit-learn, L2) on the rule features;
  points are its coefficients scaled so that POINTS_TO_DOUBLE points double
  the odds of converting, rounded to whole numbers. The score is the sum of
  the points, exactly as the engine adds them.
- Holdout: the newest leads by creation time when the outcomes span long
  enough, else a stratified split with a fixed seed. The AUC is measured on the
  holdout with the rounded points, with a Hanley–McNeil 95 % interval.
- Calibration: a one-variable logistic fit of outcome on score (training
  leads) gives "expected conversion ≈ x %" for any score; bands are cut at
  score quantiles and their expected conversion is made monotone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEED = 100
HOLDOUT_SHARE = 0.25
TIME_SPAN_DAYS = 28  # outcomes spread over less than this: no time order to test on
POINTS_TO_DOUBLE = 20
# Newton steps with the exact Hessian: few rule features, many leads.
SOLVER = "newton-cholesky"
REGULARIZATION_C = 0.3  # the default, kept unless cross-validation clearly prefers another
# Candidate strengths, judged by CV_FOLDS-fold cross-validation on (at most
# CV_MAX_LEADS of) the training leads; another must beat the default's mean
# AUC by CV_MIN_GAIN, as smaller differences are noise between folds.
C_GRID = (0.03, 0.1, 0.3, 1.0)
CV_FOLDS = 3
CV_MAX_LEADS = 10_000
CV_MIN_GAIN = 0.002
# Score quantiles of the training leads: hot = top 20 %, warm = next 30 %.
BAND_QUANTILES = {"hot": 0.80, "warm": 0.50}
GRADE_QUANTILES = {"A": 0.85, "B": 0.60, "C": 0.30, "D": 0.10}


@dataclass
class Split:
    kind: str  # "time" or "stratified"
    train: np.ndarray  # row indices
    holdout: np.ndarray


def split(created: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Split:
    """Train on the older leads and test on the newest quarter when creation
    times spread over TIME_SPAN_DAYS and both sides hold both outcomes;
    otherwise a stratified split with a fixed seed."""
    times = created[rows]
    if len(rows) and (times.max() - times.min()) >= TIME_SPAN_DAYS * 86400:
        cut = np.quantile(times, 1 - HOLDOUT_SHARE)
        late = times > cut
        train, holdout = rows[~late], rows[late]
        share = len(holdout) / len(rows)
        if 0.15 <= share <= 0.35 and all(len(np.unique(y[part])) == 2 for part in (train, holdout)):
            return Split("time", train, holdout)
    from sklearn.model_selection import train_test_split

    train, holdout = train_test_split(
        rows, test_size=HOLDOUT_SHARE, stratify=y[rows], random_state=SEED
    )
    return Split("stratified", np.sort(train), np.sort(holdout))


def fit_points(X, y: np.ndarray, c: float = REGULARIZATION_C) -> np.ndarray:
    """Whole points per feature."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, solver=SOLVER)
    model.fit(X, y)
    return _points(model.coef_[0])


def _points(coef: np.ndarray) -> np.ndarray:
    return np.rint(coef * POINTS_TO_DOUBLE / math.log(2)).astype(np.int64)


def choose_c(X, y: np.ndarray) -> float:
    """The regularization strength whose rounded points rank the left-out fold
    best on average (stratified folds, fixed seed), over a stratified sample of
    at most CV_MAX_LEADS training leads; the default unless another is clearly
    better."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    rows = np.arange(len(y))
    if len(rows) > CV_MAX_LEADS:
        rows, _ = train_test_split(rows, train_size=CV_MAX_LEADS, stratify=y, random_state=SEED)
    if min(int(y[rows].sum()), int(len(rows) - y[rows].sum())) < CV_FOLDS:
        return REGULARIZATION_C
    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=SEED).split(rows, y[rows]))

    from sklearn.linear_model import LogisticRegression

    aucs: dict[float, list[float]] = {c: [] for c in C_GRID}
    for fit_on, judge_on in folds:
        fit_rows, judge_rows = rows[fit_on], rows[judge_on]
        # Along the path from strong to weak shrinkage, each fit starts from the last.
        model = LogisticRegression(max_iter=2000, warm_start=True, solver=SOLVER)
        for c in sorted(C_GRID):
            model.set_params(C=c).fit(X[fit_rows], y[fit_rows])
            scores = np.asarray(X[judge_rows] @ _points(model.coef_[0])).ravel()
            aucs[c].append(auc(scores, y[judge_rows]) or 0.5)
    judged = {c: float(np.mean(a)) for c, a in aucs.items()}
    best = max(judged, key=judged.__getitem__)
    return best if judged[best] >= judged[REGULARIZATION_C] + CV_MIN_GAIN else REGULARIZATION_C


def auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """P(a converted lead scores higher than one that did not), ties ½ (rank-sum)."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if not pos or not neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks for ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_interval(value: float, positives: int, negatives: int) -> tuple[float, float]:
    """Hanley & McNeil (1982) 95 % confidence interval."""
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    var = (
        value * (1 - value) + (positives - 1) * (q1 - value**2) + (negatives - 1) * (q2 - value**2)
    ) / (positives * negatives)
    half = 1.96 * math.sqrt(max(var, 0.0))
    return max(0.0, value - half), min(1.0, value + half)


def calibrate(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of P(convert) = 1 / (1 + e^-(a + b·score)), fitted on training leads."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(scores.reshape(-1, 1).astype(float), y)
    return float(model.intercept_[0]), float(model.coef_[0][0])


def expected(a: float, b: float, score: float) -> float:
    z = a + b * score
    return 1 / (1 + math.exp(-z)) if z > -700 else 0.0


def cutoffs(scores: np.ndarray, quantiles: dict[str, float]) -> dict[str, int]:
    """Minimum whole score per band, never decreasing with the band's rank."""
    out: dict[str, int] = {}
    previous = None
    for key, q in quantiles.items():  # best band first
        cut = math.ceil(float(np.quantile(scores, q))) if len(scores) else 0
        if previous is not None and cut >= previous:
            cut = previous - 1
        out[key] = previous = cut
    return out


def band_rates(scores: np.ndarray, y: np.ndarray, cuts: dict[str, int]) -> list[dict]:
    """Leads, won and expected conversion per band (best first), pooled so that
    a better band never expects less than a worse one."""
    edges = list(cuts.items())
    rows = []
    upper = None
    for key, low in [*edges, ("cold", None)]:
        inside = np.ones(len(scores), bool)
        if low is not None:
            inside &= scores >= low
        if upper is not None:
            inside &= scores < upper
        rows.append(
            {"key": key, "min": low, "leads": int(inside.sum()), "won": int(y[inside].sum())}
        )
        upper = low
    # Pool adjacent violators, worst band upwards.
    blocks = [[r["won"], r["leads"], [i]] for i, r in enumerate(rows)][::-1]
    merged: list[list] = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and _rate(merged[-1]) < _rate(merged[-2]):
            top = merged.pop()
            merged[-1] = [merged[-1][0] + top[0], merged[-1][1] + top[1], merged[-1][2] + top[2]]
    for won, leads, members in merged:
        for i in members:
            rows[i]["expected"] = won / leads if leads else None
    return rows


def _rate(block: list) -> float:
    return block[0] / block[1] if block[1] else 0.0
