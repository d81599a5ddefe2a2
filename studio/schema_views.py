"""Who may read the OpenAPI schema and its docs page (a module apart from studio/schema.py,
which DRF's settings import while drf_spectacular's views are still loading)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer


def _schema_permissions():
    # Read per request, so the setting (API_SCHEMA_PUBLIC) is the one switch.
    return [AllowAny() if settings.API_SCHEMA_PUBLIC else IsAuthenticated()]


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: the OpenAPI document, for signed-in users (session or token) unless
    API_SCHEMA_PUBLIC opens it. The schema maps every route and field: a head start for an
    attacker, and of no use to someone who cannot call the API anyway."""

    def get_permissions(self):
        return _schema_permissions()

    def handle_exception(self, exc):
        # Errors in the API's one shape and media type, not as an OpenAPI (YAML) document.
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class DocsView(SpectacularSwaggerView):
    """``/api/docs/``: the browsable docs page, under the same rule; an anonymous browser is
    sent to the sign-in page and back."""

    def get_permissions(self):
        return _schema_permissions()

    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
