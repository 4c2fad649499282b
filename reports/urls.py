from django.urls import path

from reports.views import funnel, marketing, sources

app_name = "reports"

urlpatterns = [
    path("", marketing.marketing_dashboard, name="marketing"),
    path("sources/", sources.source_report, name="sources"),
    path("funnel/", funnel.funnel_report, name="funnel"),
    # REPORTS-B: sales, attribution and scoring pages are appended below this line.
]
from reports.views import attribution, digest, sales, scoring  # noqa: E402

urlpatterns += [
    path("sales/", sales.sales_report, name="sales"),
    path("attribution/", attribution.attribution_view, name="attribution"),
    path("scoring/", scoring.scoring_report, name="scoring"),
    path("digest/toggle/", digest.digest_toggle, name="digest_toggle"),
]
