"""WebSocket routes (auth is ASGI middleware in studio/ws_auth.py)."""

from django.urls import path

from logs.consumers import AgentEventsConsumer, SessionLogConsumer

websocket_urlpatterns: list = [
    path("ws/sessions/<uuid:session_id>/", SessionLogConsumer.as_asgi()),
    path("ws/agents/<uuid:agent_id>/", AgentEventsConsumer.as_asgi()),
]
