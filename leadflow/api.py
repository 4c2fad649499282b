"""The JSON API under /api/v1/ (django-ninja). Apps add their routers here."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="LeadFlow API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
)


@api.get("/health", auth=None, tags=["meta"])
def health(request):
    """Liveness probe for load balancers and docker-compose."""
    return {"status": "ok"}
