"""One progress bar for every background job (imports, rescores, learning runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from accounts.templatetags.ui import progress_bar


@pytest.mark.parametrize(
    ("state", "css"),
    [
        ("running", "progress-bar progress-bar-striped progress-bar-animated pct-42"),
        ("queued", "progress-bar progress-bar-striped progress-bar-animated pct-42"),
        ("failed", "progress-bar bg-danger pct-42"),
        ("done", "progress-bar bg-success pct-42"),
        ("stalled", "progress-bar progress-bar-striped bg-warning pct-42"),
    ],
)
def test_progress_bar_states(state, css):
    bar = progress_bar(42, label="Rescore <progress>", state=state)
    assert f'class="{css}"' in bar
    assert 'aria-valuenow="42"' in bar and 'aria-label="Rescore &lt;progress&gt;"' in bar


def test_no_template_draws_its_own_job_progress_bar():
    """Job progress bars come from the progress_bar tag, not from copied markup."""
    copies = [
        path.relative_to(settings.BASE_DIR)
        for path in Path(settings.BASE_DIR, "templates").rglob("*.html")
        if "progress-bar-striped" in path.read_text()
    ]
    assert copies == []
