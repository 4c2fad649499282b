"""Learn a suggested rule set from the organization's known outcomes.

`learn()` reads the leads (features.stream), refuses below the minimum data,
warns about and leaves out fields that look leaky, measures a model on a
holdout (model.split), then fits the points on every lead with an outcome and
returns them as ordinary rules with data-driven bands — a draft, never applied
here. Depends on numpy and scikit-learn only (besides the ORM for reading).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from leadflow.core.errors import LeadflowError
from leads.models import ActivityKind
from scoring.learning import features as feat
from scoring.learning import model

MIN_OUTCOMES = 200  # of each kind (won, not won)
LEAK_AUC = 0.9  # one field alone ranking outcomes this well is suspicious
LEAK_SALES_SHARE = 0.9  # filled in on this share of leads already with sales
MIN_SUPPORT = 20  # leads a value must have to get its own rule
# A partial leak: one value (or presence) this pure in one outcome, on at least
# LEAK_VALUE_SUPPORT leads, holding at least LEAK_VALUE_COVER of that outcome.
LEAK_PURITY = 0.98
LEAK_VALUE_SUPPORT = 30
LEAK_VALUE_COVER = 0.05
# Values that record a salesperson's contact with the lead (a call's outcome,
# an SMS sent, the deal closed): a field holding them on LEAK_VALUE_COVER of the
# leads was written after sales contact, whatever its outcome rates.
SALES_CONTACT_WORDS = re.compile(
    r"\b(sms sent|phone conversation|unreachable|ringing|switched off|invalid number"
    r"|wrong number|no answer|not answering|voicemail|will revert|not interested"
    r"|closed by|lost to)\b"
)


class NotEnoughOutcomes(LeadflowError):
    """Too few won or lost leads to learn from."""

    def __init__(self, won: int, lost: int):
        self.won, self.lost = won, lost
        self.won_needed = max(0, MIN_OUTCOMES - won)
        self.lost_needed = max(0, MIN_OUTCOMES - lost)
        needs = [
            f"{n:,} more {what}"
            for n, what in ((self.won_needed, "won"), (self.lost_needed, "lost or disqualified"))
            if n
        ]
        super().__init__(
            f"Learning needs at least {MIN_OUTCOMES} won and {MIN_OUTCOMES} lost leads; "
            f"you have {won:,} won and {lost:,} lost. Record {' and '.join(needs)} "
            "outcomes (import them, or mark leads won/lost) and try again."
        )


@dataclass
class Learned:
    rules: list[dict]
    settings: dict
    metrics: dict
    training_lead_ids: list[int] = field(default_factory=list)
    features: list[feat.Feature] = field(default_factory=list)
    points: np.ndarray | None = None
    lead_ids: np.ndarray | None = None
    scores: np.ndarray | None = None  # the draft score of every streamed lead


def leaky_fields(data: feat.Dataset, sp: model.Split, y: np.ndarray) -> list[dict]:
    """Fields and activity kinds that look filled in (or logged) after sales
    talked to the lead; each warning says why and is left out of learning.

    - a field whose values alone rank the outcomes almost perfectly (on the
      holdout, with rates from the training leads);
    - a custom attribute with one value, or its mere presence or absence, that
      is near-pure in one outcome on enough leads and holds a real share of
      that outcome's leads (a partial leak: "closed by …", "worst");
    - a field filled in mostly on leads that had already reached sales;
    - an activity kind logged mostly after sales took the lead over, or whose
      mere presence is near-pure in one outcome.

    The lead fields the product fills in at capture (source, quality, …) are
    only held to the first test: a value like "junk" may well be pure in lost
    leads and still be known before sales."""
    out = []
    known = np.concatenate([sp.train, sp.holdout])
    won_total = int(y[known].sum())
    totals = (len(known) - won_total, won_total)  # lost, won
    overall_sales = data.reached_sales.mean() if len(data.reached_sales) else 0
    for name, column in data.columns.items():
        codes = np.frombuffer(column.codes, dtype=np.int32)
        train_codes, train_y = codes[sp.train], y[sp.train]
        sums = np.bincount(train_codes, weights=train_y, minlength=len(column.texts))
        counts = np.bincount(train_codes, minlength=len(column.texts))
        base = train_y.mean()
        rates = np.where(counts > 0, (sums + base) / (counts + 1), base)
        value_auc = model.auc(rates[codes[sp.holdout]], y[sp.holdout])
        filled = codes != 0
        why = None
        if value_auc is not None and value_auc >= LEAK_AUC:
            why = f"its values alone rank outcomes with an AUC of {value_auc:.2f}"
        elif name.startswith("custom."):
            texts = column.text_of()
            n_value = np.bincount(codes[known], minlength=len(texts))
            won_value = np.bincount(codes[known], weights=y[known], minlength=len(texts))
            groups = [
                (f"the value “{texts[code]}”" if code else "being empty", n, int(won_value[code]))
                for code, n in enumerate(n_value.tolist())
                if n >= LEAK_VALUE_SUPPORT
            ]
            groups.append(
                ("being filled in", int(filled[known].sum()), int(y[known][filled[known]].sum()))
            )
            why = _pure_group(groups, totals) or _sales_contact(texts, n_value)
        if why is None and filled.sum() >= MIN_SUPPORT and overall_sales < 0.5:
            share = data.reached_sales[filled].mean()
            if share >= LEAK_SALES_SHARE:
                why = f"{share:.0%} of the leads that have it had already reached sales"
        if why:
            out.append({"field": name, "why": why})
    for kind in sorted({kind for kind, _ in data.activity}):
        after = data.activity_after.get(kind, np.zeros(len(y), np.int32))
        before = data.activity[(kind, None)]
        worked = int((after[known] > 0).sum())
        logged_after = int(after[known].sum())
        share = logged_after / (logged_after + int(before[known].sum()) or 1)
        if worked >= LEAK_VALUE_SUPPORT and share >= LEAK_SALES_SHARE:
            why = f"{share:.0%} of them were logged after sales took the lead over"
        else:
            has = (before + after)[known] > 0
            why = _pure_group([("having any", int(has.sum()), int(y[known][has].sum()))], totals)
        if why:
            out.append({"field": "", "activity_kind": kind, "label": _kind_label(kind), "why": why})
    return out


def _pure_group(groups: list[tuple[str, int, int]], totals: tuple[int, int]) -> str | None:
    """Why the first group (label, leads, won) that is near-pure in one outcome
    on enough leads, covering enough of that outcome, leaks."""
    for label, n, won in groups:
        if n < LEAK_VALUE_SUPPORT:
            continue
        for outcome, hits, word in ((1, won, "won"), (0, n - won, "lost")):
            if hits >= LEAK_PURITY * n and hits >= LEAK_VALUE_COVER * totals[outcome]:
                return (
                    f"{label} goes with {word} leads {hits / n:.0%} of the time "
                    f"({n:,} leads, {hits / totals[outcome]:.0%} of all {word})"
                )
    return None


def _sales_contact(texts: list[str], counts: np.ndarray) -> str | None:
    """Why a field whose values record what sales did (a call's outcome, an SMS
    sent, a deal closed) on a real share of the leads leaks, even when no
    single value is pure: such a value exists only after sales contact."""
    named = [
        (int(counts[code]), text)
        for code, text in enumerate(texts)
        if code and counts[code] and SALES_CONTACT_WORDS.search(text)
    ]
    if not named or sum(n for n, _ in named) < LEAK_VALUE_COVER * counts.sum():
        return None
    named.sort(reverse=True)
    shown = ", ".join(f"“{text}” ({n:,} leads)" for n, text in named[:3])
    return f"its values record sales contact: {shown}"


def _kind_label(kind: str) -> str:
    return f"activity: {ActivityKind(kind).label}"


def drop_leaky(data: feat.Dataset, warnings: list[dict]) -> None:
    """Leave the warned-about fields and activity kinds out of the dataset."""
    for warning in warnings:
        if warning.get("activity_kind"):
            kind = warning["activity_kind"]
            for key in [key for key in data.activity if key[0] == kind]:
                data.activity.pop(key)
        else:
            data.columns.pop(warning["field"], None)


def learn(
    *,
    excluded: set[str],
    now: datetime,
    progress: Callable[[str, int], None] | None = None,
    describe: Callable[[dict], str] = lambda r: r["field"],
    window_days: int | None = None,
) -> Learned:
    """Must run inside the organization's scope. Raises NotEnoughOutcomes."""

    def step(text: str, percent: int) -> None:
        if progress:
            progress(text, percent)

    step("Reading leads and outcomes", 5)
    data = feat.stream(
        fields=feat.candidate_fields(excluded), now=now, progress=progress, window_days=window_days
    )
    known = np.flatnonzero(data.outcome != feat.OPEN)
    y = (data.outcome == feat.WON).astype(np.int64)
    won = int(y[known].sum())
    lost = len(known) - won
    if won < MIN_OUTCOMES or lost < MIN_OUTCOMES:
        raise NotEnoughOutcomes(won, lost)

    step("Checking fields for leakage", 30)
    sp = model.split(data.created, y, known)
    warnings = leaky_fields(data, sp, y)
    drop_leaky(data, warnings)

    step("Measuring on the holdout leads", 45)
    support = max(MIN_SUPPORT, int(0.005 * len(sp.train)))
    trial = feat.build_features(data, sp.train, support)
    # One matrix at a time, of the rows in use, each freed before the next (1M leads).
    X = trial.matrix(sp.train)
    c = model.choose_c(X, y[sp.train])
    trial_points = model.fit_points(X, y[sp.train], c)
    train_scores = np.asarray(X @ trial_points).ravel()
    del X
    holdout_scores = np.asarray(trial.matrix(sp.holdout) @ trial_points).ravel()
    del trial
    holdout_auc = model.auc(holdout_scores, y[sp.holdout])
    h_won = int(y[sp.holdout].sum())
    low, high = model.auc_interval(holdout_auc, h_won, len(sp.holdout) - h_won)
    trial_cuts = model.cutoffs(train_scores, model.BAND_QUANTILES)
    draft_bands_holdout = model.band_rates(holdout_scores, y[sp.holdout], trial_cuts)
    current_auc = model.auc(data.scores[sp.holdout].astype(float), y[sp.holdout])

    step("Fitting the points on every lead with an outcome", 70)
    final = feat.build_features(data, known, max(MIN_SUPPORT, int(0.005 * len(known))))
    X = final.matrix(known)
    points = model.fit_points(X, y[known], c)
    del X
    X = final.matrix()
    final.masks.clear()
    scores = np.asarray(X @ points).ravel()
    is_fit = np.array([f.kind == "fit" for f in final.features], dtype=bool)
    fit_scores = (
        np.asarray(X[:, np.flatnonzero(is_fit)] @ points[is_fit]).ravel()
        if is_fit.any()
        else np.zeros(len(scores))
    )
    a, b = model.calibrate(scores[known], y[known])
    # Bands and the MQL threshold are positive points (the settings' bounds).
    cuts = model.cutoffs(scores[known], model.BAND_QUANTILES)
    cuts["warm"] = max(1, cuts["warm"])
    cuts["hot"] = max(cuts["warm"] + 1, cuts["hot"])
    grades = model.cutoffs(fit_scores[known], model.GRADE_QUANTILES)
    bands = model.band_rates(scores[known], y[known], cuts)
    threshold = cuts["hot"]

    step("Writing the suggested rules", 90)
    rules = []
    for feature, p in zip(final.features, points, strict=True):
        if p:
            rule = feature.rule(int(p), "")
            rule["name"] = describe(rule)[:200]
            rules.append(rule)
    draft_band = np.where(
        scores >= cuts["hot"], "hot", np.where(scores >= cuts["warm"], "warm", "cold")
    )
    current_band = np.asarray(data.bands, dtype=object)
    metrics = {
        "outcomes": {"won": won, "lost": lost, "open": int(len(y) - len(known))},
        "holdout": {
            "split": sp.kind, "leads": len(sp.holdout), "won": h_won,
            "auc": holdout_auc, "low": low, "high": high, "current_auc": current_auc,
            "draft_bands": draft_bands_holdout,
            "current_bands": _stored_band_rates(current_band[sp.holdout], y[sp.holdout]),
        },
        "training": {"leads": len(known), "won": won},
        "bands": bands,
        "calibration": {"a": a, "b": b},
        "warnings": warnings,
        "features": len(final.features),
        "regularization": c,
        "leads": len(y),
        "changed_band": int((draft_band != current_band).sum()),
        "mql": {"current": int(data.mql.sum()), "draft": int((scores >= threshold).sum())},
    }  # fmt: skip
    settings = {
        "mql_threshold": threshold,
        "temperature_bands": {"hot": cuts["hot"], "warm": cuts["warm"]},
        "grade_bands": grades,
    }
    step("Done", 100)
    return Learned(
        rules=rules,
        settings=settings,
        metrics=metrics,
        training_lead_ids=[int(x) for x in data.lead_ids[known]],
        features=[f for f, p in zip(final.features, points, strict=True) if p],
        points=points[points != 0],
        lead_ids=data.lead_ids,
        scores=scores,
    )


def _stored_band_rates(bands: np.ndarray, y: np.ndarray) -> list[dict]:
    rows = []
    for key in ("hot", "warm", "cold"):
        inside = bands == key
        n = int(inside.sum())
        rows.append(
            {
                "key": key,
                "leads": n,
                "won": int(y[inside].sum()),
                "expected": (y[inside].sum() / n) if n else None,
            }
        )
    return rows
