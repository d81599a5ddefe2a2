"""Page views. Thin: read through selectors, write through the same services as the API.

Deploy, stop, prompts, sandbox actions and cancel are done by the pages' scripts against the
REST API (session cookie + CSRF header), so those rules are not repeated here.
"""

from __future__ import annotations

import re
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.models import LIVE_SESSION_STATUSES
from agents.selectors import agent_get, session_get, sessions_for
from agents.services.agents import agent_create, agent_delete, agent_update
from agents.web import summaries
from agents.web.forms import AgentForm
from sandboxes.selectors import latest_sandbox
from studio.errors import NotFound

# Rows the agent page renders; the sessions API pages through the rest.
SESSIONS_SHOWN = 50
# Lines the terminal loads at once before following live; older ones via "Download".
TERMINAL_TAIL = 5000
# The seed guide's web-scraping skill (Playwright for Node) first; the runtime's Python one
# if it is missing.
EXAMPLE_SKILLS = [
    Path(__file__).parent / "examples" / "web-scraping.md",
    settings.BASE_DIR / "agent_runtime" / "skills" / "web-scraping" / "SKILL.md",
]


def owned(view):
    """Sign-in required; another user's (or no such) object renders the 404 page."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            return render(request, "404.html", {"message": exc.message}, status=404)

    return wrapper


@require_GET
@owned
def agent_list(request):
    agents = summaries.with_status(summaries.agent_rows(user=request.user))
    # htmx polls the rows alone (see templates/agents/list.html for why a poll).
    template = "agents/_rows.html" if request.headers.get("HX-Request") else "agents/list.html"
    return render(request, template, {"agents": agents})


@require_http_methods(["GET", "POST"])
@owned
def agent_new(request):
    form = AgentForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            agent = agent_create(owner=request.user, data=form.data)
        except ValidationError as exc:
            form.add_model_errors(exc)
        else:
            messages.success(request, f"Created {agent.name}.")
            return redirect("web:agent-detail", agent_id=agent.pk)
    return _form_page(request, form, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@owned
def agent_edit(request, agent_id):
    agent = agent_get(user=request.user, agent_id=agent_id)
    form = AgentForm(request.POST if request.method == "POST" else None, agent=agent)
    if form.is_valid():
        try:
            agent_update(agent=agent, data=form.data)
        except ValidationError as exc:
            form.add_model_errors(exc)
        else:
            messages.success(request, "Saved. A running sandbox picks the changes up on redeploy.")
            return redirect("web:agent-detail", agent_id=agent.pk)
    return _form_page(request, form, status=400 if form.errors else 200)


@require_POST
@owned
def agent_remove(request, agent_id):
    agent = agent_get(user=request.user, agent_id=agent_id)
    agent_delete(agent=agent)
    messages.success(request, f"Deleted {agent.name}.")
    return redirect("web:agent-list")


@require_GET
@owned
def agent_detail(request, agent_id):
    agent = agent_get(user=request.user, agent_id=agent_id)
    sessions = sessions_for(user=request.user, agent_id=agent.pk)
    deployment = latest_sandbox(agent)
    resumable = summaries.resumable_session(user=request.user, agent=agent)
    config = {
        "agentId": str(agent.pk),
        "api": f"/api/agents/{agent.pk}/",
        "ws": f"/ws/agents/{agent.pk}/",
        "sessionUrl": "/sessions/{id}/",
        "resumeId": str(resumable.pk) if resumable else None,
    }
    return render(
        request,
        "agents/detail.html",
        {
            "agent": agent,
            "deployment": deployment,
            "status": summaries.display_status(
                deployment.status if deployment else None,
                sessions.filter(status__in=LIVE_SESSION_STATUSES).exists(),
            ),
            "sessions": sessions[:SESSIONS_SHOWN],
            "session_count": sessions.count(),
            "resumable": resumable,
            "config": config,
        },
    )


@require_GET
@owned
def session_terminal(request, session_id):
    session = session_get(user=request.user, session_id=session_id)
    config = {
        "sessionId": str(session.pk),
        "api": f"/api/sessions/{session.pk}/",
        "ws": f"/ws/sessions/{session.pk}/",
        "lastSeq": session.last_seq,
        "tail": TERMINAL_TAIL,
        "status": session.status,
    }
    return render(
        request,
        "sessions/terminal.html",
        {"session": session, "agent": session.agent, "config": config},
    )


def _form_page(request, form: AgentForm, *, status: int):
    return render(
        request,
        "agents/form.html",
        {
            "form": form,
            "agent": form.agent,
            "values": form.values,
            "choices": form.choices,
            "site_backend": settings.SANDBOX_BACKEND,
            "example_skill": _example_skill(),
            "cancel_url": reverse("web:agent-detail", args=[form.agent.pk])
            if form.agent
            else reverse("web:agent-list"),
        },
        status=status,
    )


def _example_skill() -> dict | None:
    """The bundled web-scraping skill as {name, description, body} (front matter split)."""
    path = next((p for p in EXAMPLE_SKILLS if p.is_file()), None)
    if path is None:
        return None
    match = re.match(r"^---\n(.*?)\n---\n+(.*)$", path.read_text(), re.S)
    if not match:
        return None
    meta = dict(
        (k.strip(), v.strip().strip('"'))
        for k, _, v in (line.partition(":") for line in match.group(1).splitlines())
    )
    return {
        "name": meta.get("name", ""),
        "description": meta.get("description", ""),
        "body": match.group(2),
    }
