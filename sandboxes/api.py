"""Sandbox routes under /api/agents/{id}/ and session cancel: thin views over services."""

from __future__ import annotations

import base64

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_get, session_get
from logs.serializers import SessionOutputSerializer
from sandboxes import api_serializers as io
from sandboxes.selectors import latest_sandbox
from sandboxes.serializers import DeploymentSerializer, SandboxOutputSerializer
from sandboxes.services import actions
from sandboxes.services.deploy import live_sandbox, sandbox_deploy
from sandboxes.services.lifecycle import sandbox_stop
from sandboxes.services.sessions import session_cancel, session_execute
from studio.errors import NotFound


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _deployment(sandbox, code=status.HTTP_200_OK) -> Response:
    return Response({"deployment": SandboxOutputSerializer(sandbox).data}, status=code)


class DeployView(APIView):
    @extend_schema(
        request=None, responses={202: DeploymentSerializer}, operation_id="agents_deploy"
    )
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        return _deployment(sandbox_deploy(agent=agent), status.HTTP_202_ACCEPTED)


class SandboxView(APIView):
    @extend_schema(
        responses={200: DeploymentSerializer},
        operation_id="agents_sandbox",
        description=(
            "The agent's latest deployment, whatever its status (`stopped`, `expired`, "
            "`paused` and `failed` included; a failed one's `error` says why and how to fix "
            "it). 404 only when the agent was never deployed."
        ),
    )
    def get(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        # The live one if any (it is also the newest, as deploy makes at most one at a time).
        sandbox = live_sandbox(agent) or latest_sandbox(agent)
        if sandbox is None:
            raise NotFound("This agent has never been deployed.")
        return _deployment(sandbox)


class StopView(APIView):
    @extend_schema(request=None, responses={202: DeploymentSerializer}, operation_id="agents_stop")
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        sandbox = live_sandbox(agent) or latest_sandbox(agent)
        if sandbox is None:
            raise NotFound("This agent has never been deployed.")
        return _deployment(sandbox_stop(sandbox=sandbox), status.HTTP_202_ACCEPTED)


class ExecuteView(APIView):
    @extend_schema(
        request=io.ExecuteInputSerializer,
        responses={202: io.ExecuteOutputSerializer},
        operation_id="agents_execute",
    )
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        data = _valid(io.ExecuteInputSerializer, request.data)
        session = session_execute(
            agent=agent, prompt=data["prompt"], env=data.get("env") or {}, resume=data.get("resume")
        )
        return Response(
            {"session_id": session.pk, "status": session.status}, status=status.HTTP_202_ACCEPTED
        )


class FilesView(APIView):
    @extend_schema(
        request=io.FilesInputSerializer,
        responses={200: io.FilesWrittenSerializer},
        operation_id="agents_sandbox_files_write",
    )
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        data = _valid(io.FilesInputSerializer, request.data)
        files = [actions.decode_file(item, i) for i, item in enumerate(data["files"])]
        written = actions.files_write(sandbox=live_sandbox(agent), files=files)
        return Response({"written": written})

    @extend_schema(
        parameters=[OpenApiParameter("path", str, description="Default /workspace.")],
        responses={200: io.FileReadSerializer},
        operation_id="agents_sandbox_files_read",
    )
    def get(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        found = actions.files_read(
            sandbox=live_sandbox(agent), path=request.query_params.get("path") or "/workspace"
        )
        if found["type"] == "directory":
            entries = [e.__dict__ for e in found["entries"]]
            return Response({"type": "directory", "path": found["path"], "entries": entries})
        content: bytes = found["content"]
        try:
            text, encoding = content.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(content).decode(), "base64"
        return Response(
            {
                "type": "file",
                "path": found["path"],
                "content": text,
                "encoding": encoding,
                "size": len(content),
            }
        )


class PackagesView(APIView):
    @extend_schema(
        request=io.PackagesInputSerializer,
        responses={200: io.ExecOutputSerializer},
        operation_id="agents_sandbox_packages",
    )
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        data = _valid(io.PackagesInputSerializer, request.data)
        result = actions.packages_install(
            sandbox=live_sandbox(agent), packages=data["packages"], manager=data["manager"]
        )
        return Response(result.__dict__)


class ExecView(APIView):
    @extend_schema(
        request=io.ExecInputSerializer,
        responses={200: io.ExecOutputSerializer},
        operation_id="agents_sandbox_exec",
    )
    def post(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        data = _valid(io.ExecInputSerializer, request.data)
        result = actions.command_exec(
            sandbox=live_sandbox(agent),
            command=data["command"],
            timeout_ms=data.get("timeout"),
            cwd=data.get("cwd"),
        )
        return Response(result.__dict__)


class SessionCancelView(APIView):
    @extend_schema(
        request=None, responses={202: SessionOutputSerializer}, operation_id="sessions_cancel"
    )
    def post(self, request, session_id):
        session = session_cancel(session=session_get(user=request.user, session_id=session_id))
        return Response(SessionOutputSerializer(session).data, status=status.HTTP_202_ACCEPTED)
