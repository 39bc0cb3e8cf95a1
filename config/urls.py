from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import APIRootView, DefaultRouter

from accounts.api.views import CurrentTokenView, MeView, TokenView
from audit.api.views import AuditEventViewSet
from core import health, metrics
from core.api import exceptions


class ApiRoot(APIRootView):
    """The API's top-level resources; nested ones hang off a case (`/cases/{id}/parties/`, …)."""

    api_root_dict = {
        "cases": "case-list", "persons": "person-list", "organizations": "organization-list",
        "links": "link-list", "shipments": "shipment-list", "licences": "licence-list",
        "commodities": "commodity-list", "prosecutions": "prosecution-list", "search": "search",
        "graph": "graph", "imports": "import-list", "xref/runs": "xref-run-list",
        "xref/matches": "xref-match-list", "xref/hits": "xref-hit-list", "watchlists": "watchlist-list",
        "alerts": "alert-list", "audit": "audit-list",
    }


router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("audit", AuditEventViewSet, basename="audit")

api: list[URLPattern | URLResolver] = [
    path("auth/tokens/", TokenView.as_view(), name="auth-tokens"),
    path("auth/tokens/current/", CurrentTokenView.as_view(), name="auth-token-current"),
    path("auth/me/", MeView.as_view(), name="auth-me"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Redoc without the web fonts its stock page loads from Google (the docs work offline).
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="core/redoc.html"), name="redoc"),
    path("", ApiRoot.as_view(), name="api-root"),
    path("", include(router.urls)),
    path("", include("cases.api.urls")),
    path("", include("entities.api.urls")),
    path("", include("shipments.api.urls")),
    path("", include("explore.urls")),
    path("", include("imports.api.urls")),
    path("", include("xref.api.urls")),
    path("", include("alerts.api.urls")),
    path("", include("watchlists.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api)),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

handler400 = exceptions.json_bad_request
handler403 = exceptions.json_permission_denied
handler404 = exceptions.json_not_found
handler500 = exceptions.json_server_error
