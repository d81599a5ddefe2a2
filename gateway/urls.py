"""The gateway's routes: the model proxy (mounted by studio/urls.py at GATEWAY_PATH) and the
user's limits (under /api/)."""

from django.urls import path

from gateway import api, views

proxy_urlpatterns = [path("<path:path>", views.model_proxy, name="model-gateway")]

urlpatterns = [path("usage/limits", api.UsageLimitsView.as_view(), name="usage-limits")]
