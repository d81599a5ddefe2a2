from django.urls import path

from sandboxes import api
from sandboxes.usage_api import UsageView

urlpatterns = [
    path("agents/<uuid:agent_id>/deploy", api.DeployView.as_view(), name="agent-deploy"),
    path("agents/<uuid:agent_id>/sandbox", api.SandboxView.as_view(), name="agent-sandbox"),
    path("agents/<uuid:agent_id>/execute", api.ExecuteView.as_view(), name="agent-execute"),
    path("agents/<uuid:agent_id>/stop", api.StopView.as_view(), name="agent-stop"),
    path("agents/<uuid:agent_id>/sandbox/files", api.FilesView.as_view(), name="sandbox-files"),
    path(
        "agents/<uuid:agent_id>/sandbox/packages",
        api.PackagesView.as_view(),
        name="sandbox-packages",
    ),
    path("agents/<uuid:agent_id>/sandbox/exec", api.ExecView.as_view(), name="sandbox-exec"),
    path("usage/", UsageView.as_view(), name="usage"),
    path(
        "sessions/<uuid:session_id>/cancel", api.SessionCancelView.as_view(), name="session-cancel"
    ),
]
