"""The server-rendered pages, included at the site root by studio/urls.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from agents.web import views

app_name = "web"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.agent_list, name="agent-list"),
    path("agents/new/", views.agent_new, name="agent-new"),
    path("agents/<uuid:agent_id>/", views.agent_detail, name="agent-detail"),
    path("agents/<uuid:agent_id>/edit/", views.agent_edit, name="agent-edit"),
    path("agents/<uuid:agent_id>/delete/", views.agent_remove, name="agent-delete"),
    path("sessions/<uuid:session_id>/", views.session_terminal, name="session-terminal"),
]
