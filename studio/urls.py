from django.contrib import admin
from django.urls import include, path

from studio.health import healthz
from studio.schema_views import DocsView, SchemaView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("agents.urls")),
    path("api/", include("logs.urls")),
    path("api/", include("sandboxes.urls")),
    path("", include("agents.web_urls")),
]
