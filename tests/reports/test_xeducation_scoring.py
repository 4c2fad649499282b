"""Learning on the real X Education dataset (9,237 leads, `Converted` outcome),
without the fields sales fills in after qualifying.

70 % of the leads are imported with their outcome (stratified split, seed 100),
the points are learned and applied; then the other 30 % are imported with
theirs. Those leads were never learned from: their stored scores must rank
buyers with an AUC of at least HONEST_AUC, and the scoring-health page's holdout
figure must be exactly that AUC."""

from __future__ import annotations

import csv
import io
from bisect import bisect_left, bisect_right
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from sklearn.model_selection import train_test_split

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from reports.period import parse_report_query
from reports.selectors.scoring import cohort, holdout_health
from scoring import engine, services, versions
from scoring.forms import FitRuleForm
from scoring.models import ScoringRule
from tests.leads.test_import_jobs import start, upload

NAME = "x-education-leads.csv"
# The shared data sits beside the repository (a worktree may sit one level deeper).
DATASET = next(
    (
        p / "shared" / "data" / NAME
        for p in Path(__file__).resolve().parents[2].parents
        if (p / "shared" / "data" / NAME).exists()
    ),
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / NAME,
)
pytestmark = pytest.mark.skipif(not DATASET.exists(), reason="the shared dataset is not here")

# Filled in by X Education's sales team after talking to the lead: tags, quality,
# the Asymmetrique indices, the lead profile, and the last activity columns (which
# record the calls and SMS of sales). The lead number is a record id, not a fact.
POST_QUALIFICATION = [
    "custom.tags", "custom.lead_quality", "custom.asymmetrique_activity_index",
    "custom.asymmetrique_profile_index", "custom.asymmetrique_activity_score",
    "custom.asymmetrique_profile_score", "custom.lead_profile", "custom.last_activity",
    "custom.last_notable_activity", "custom.lead_number",
]  # fmt: skip


# Without the sales-filled columns the learned points rank unseen buyers at 0.865
# (0.864 with 10 % number bins; gradient boosting on the same columns: 0.865). The
# issue's 0.88-0.89 needed Lead Profile and Last Activity (with them: 0.90).
HONEST_AUC = 0.86


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def independent_auc(pairs: list[tuple[int, bool]]) -> float:
    """P(score of a converted lead > score of another), ties ½ — counted per positive."""
    negatives = sorted(s for s, won in pairs if not won)
    positives = [s for s, won in pairs if won]
    wins = sum(
        bisect_left(negatives, s) + 0.5 * (bisect_right(negatives, s) - bisect_left(negatives, s))
        for s in positives
    )
    return wins / (len(positives) * len(negatives))


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def import_with_outcomes(org, admin, capture, data: bytes, name: str):
    job = upload(org, admin, data, name=name)
    mapping = {**job.mapping, "Converted": "outcome"}
    return start(job, capture, mapping=mapping)


def test_learned_scores_rank_unseen_x_education_leads(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    with DATASET.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    converted = [r[header.index("Converted")] for r in rows]
    learn_rows, later_rows = train_test_split(
        rows, test_size=0.3, stratify=converted, random_state=100
    )
    with tenant_scope(org):
        services.post_qualification_mark(
            organization_id=org.pk, fields=POST_QUALIFICATION, actor=admin
        )
    job = import_with_outcomes(
        org, admin, django_capture_on_commit_callbacks, csv_bytes(header, learn_rows), "a.csv"
    )
    assert job.created_count == len(learn_rows) == 6465

    with tenant_scope(org):
        draft = versions.version_learn(organization_id=org.pk, actor=admin)
        holdout = draft.metrics["holdout"]
        assert holdout["split"] == "stratified"  # one import: no time order to test on
        assert holdout["auc"] >= HONEST_AUC and holdout["low"] < holdout["auc"] < holdout["high"]
        assert not {r["field"] for r in draft.rules} & set(POST_QUALIFICATION)
        with django_capture_on_commit_callbacks(execute=True):
            versions.version_apply(version=draft, actor=admin)
    later = import_with_outcomes(
        org, admin, django_capture_on_commit_callbacks, csv_bytes(header, later_rows), "b.csv"
    )
    assert later.created_count == len(later_rows)

    if connection.vendor == "postgresql":
        # As autovacuum would after a bulk load: without statistics the report's
        # EXISTS lookups of stage history are planned as sequential scans.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    ids = {r[0] for r in later_rows}
    won = {r[0] for r in later_rows if r[header.index("Converted")] == "1"}
    with tenant_scope(org):
        pairs = [
            (score, ext in won)
            for ext, score in Lead.objects.filter(external_id__in=ids).values_list(
                "external_id", "score"
            )
        ]
        query = parse_report_query({}, organization=org, membership=admin)
        holdout_figures = holdout_health(cohort(query))
        # A rule on a field sales fills in is refused.
        form = FitRuleForm(
            {"field": "custom", "custom_key": "tags", "operator": "eq", "value": "Ringing",
             "points": "-20"},
            instance=ScoringRule(organization=org),
        )  # fmt: skip
        assert not form.is_valid() and "filled in by sales" in str(form.errors)
    expected = independent_auc(pairs)
    print(f"holdout AUC of the later 30 %: {expected:.4f}; learning's own: {holdout['auc']:.4f}")
    assert expected >= HONEST_AUC
    assert len(pairs) == 2772
    assert holdout_figures is not None
    assert (holdout_figures.leads, holdout_figures.won) == (2772, len(won))
    assert holdout_figures.auc == pytest.approx(expected, abs=1e-12)
    url = reverse("reports:scoring", kwargs={"org_slug": org.slug})
    page = admin_client.get(url, {"compare": "none"})  # this period only: no second pass
    assert page.status_code == 200
    assert f'data-testid="holdout-auc">{expected:.3f}<'.encode() in page.content
    with tenant_scope(other_org):
        assert not Lead.objects.exists()
        engine.rescore(organization_id=other_org.pk)
