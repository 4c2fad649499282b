"""One Chart.js glue: every chart canvas is drawn by static/js/charts.js (issue #14)."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

BASE = Path(settings.BASE_DIR)
TEMPLATES = sorted((BASE / "templates").rglob("*.html"))


def test_every_canvas_names_a_kind_the_glue_draws():
    glue = (BASE / "static/js/charts.js").read_text()
    builders = set(re.search(r"var builders = \{([^}]*)\}", glue)[1].replace(" ", "").split(","))
    kinds = {name.split(":")[0] for name in builders}
    canvases = [
        (path.name, tag)
        for path in TEMPLATES
        for tag in re.findall(r"<canvas[^>]*>", path.read_text())
    ]
    assert canvases
    for name, tag in canvases:
        kind = re.search(r'data-chart-kind="([^"]+)"', tag)
        assert "data-chart=" in tag and kind and kind[1] in kinds, (name, tag)


def test_chart_js_is_loaded_by_one_partial():
    loaders = [
        path.relative_to(BASE).as_posix()
        for path in TEMPLATES
        if re.search(r"<script[^>]*(chart\.umd|charts\.js)", path.read_text())
    ]
    assert loaders == ["templates/partials/chart_js.html"]
    assert sorted(p.name for p in (BASE / "static/js").glob("*chart*.js")) == ["charts.js"]
