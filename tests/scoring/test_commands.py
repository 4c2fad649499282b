"""Operations commands: create_organization, import_leads --outcome-column,
scoring_learn [--apply] — a customer's history loaded and learned from a shell."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Organization, Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, LeadStage
from scoring import learning
from scoring.models import RuleSetVersion, VersionStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def history_csv(path, n: int) -> None:
    rng = np.random.default_rng(11)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Email", "Segment", "Visits", "Converted"])
        for i in range(n):
            segment = ["schools", "clinics", "shops"][int(rng.integers(3))]
            visits = int(rng.integers(0, 30))
            z = -1 + 1.5 * (segment == "schools") + 0.08 * visits
            won = rng.random() < 1 / (1 + np.exp(-z))
            writer.writerow([f"buyer{i}@northwind-{i % 7}.com", segment, visits, int(won)])


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_history_is_loaded_and_learned_from_the_shell(tmp_path, other_org, monkeypatch):
    said = run(
        "create_organization", "northwind", "--name", "Northwind", "--admin", "ops@nw.example"
    )
    assert "Created Northwind at /o/northwind/" in said
    org = Organization.objects.get(slug="northwind")
    assert Membership.objects.get(organization=org).role == Role.ADMIN
    with pytest.raises(CommandError, match="already exists"):
        run("create_organization", "northwind", "--name", "Again", "--admin", "x@nw.example")

    path = tmp_path / "history.csv"
    history_csv(path, 300)
    said = run("import_leads", "northwind", str(path), "--outcome-column", "Converted")
    assert "300 rows: 300 created" in said
    with tenant_scope(org):
        won = Lead.objects.filter(stage=LeadStage.WON).count()
        assert 0 < won < 300 and Lead.objects.filter(stage=LeadStage.LOST).count() == 300 - won

    with pytest.raises(CommandError, match="too few outcomes"):
        run("scoring_learn", "northwind")
    monkeypatch.setattr(learning, "MIN_OUTCOMES", 50)
    said = run("scoring_learn", "northwind", "--apply")
    assert "Enough data" in said and "Holdout AUC 0." in said and "Applied version" in said
    with tenant_scope(org):
        assert RuleSetVersion.objects.filter(
            status=VersionStatus.APPLIED, source="learned"
        ).exists()
    with tenant_scope(other_org):
        assert not Lead.objects.exists()
