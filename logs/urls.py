from django.urls import path

from logs import api

urlpatterns = [
    path("sessions/", api.SessionListView.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>/", api.SessionDetailView.as_view(), name="session-detail"),
    path("sessions/<uuid:session_id>/logs", api.SessionLogsView.as_view(), name="session-logs"),
    path("agents/<uuid:agent_id>/logs", api.AgentLogsView.as_view(), name="agent-logs"),
    path("internal/logs/append", api.LogAppendView.as_view(), name="logs-append"),
]
