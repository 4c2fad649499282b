"""One per-organization fan-out (TenantTask.fan_out) for every periodic task (issue #14)."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

from django.conf import settings

from pipeline.tasks import sla_check_org
from reports.tasks import refresh_rollups


def test_fan_out_sends_one_call_per_organization_with_the_same_options():
    with mock.patch.object(refresh_rollups, "apply_async") as send:
        assert refresh_rollups.fan_out(iter([3, 7]), expires=600, full=True) == 2
    assert send.call_args_list == [
        mock.call(kwargs={"organization_id": 3, "full": True}, expires=600),
        mock.call(kwargs={"organization_id": 7, "full": True}, expires=600),
    ]
    with mock.patch.object(sla_check_org, "apply_async") as send:
        assert sla_check_org.fan_out([]) == 0
    send.assert_not_called()


def test_no_task_module_loops_over_organizations_to_enqueue():
    """The loop lives in leadflow.core.tenancy.TenantTask.fan_out only."""
    loop = re.compile(r"for organization_id in [^\n]*:\n(?:[^\n]*\n)?\s+\w+\.(apply_async|delay)\(")
    copies = [
        path.relative_to(settings.BASE_DIR).as_posix()
        for app in ("accounts", "leads", "scoring", "pipeline", "nurture", "reports")
        for path in Path(settings.BASE_DIR, app).rglob("*.py")
        if loop.search(path.read_text())
    ]
    assert copies == []
