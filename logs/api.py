"""Sessions and logs REST API, and the ingest endpoint sandboxes post to. Thin views.

One view class per route, so a route owned elsewhere (``POST /api/sessions/{id}/cancel`` in
sandboxes/urls.py) sits beside these without touching them.
"""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_get, session_get, sessions_for
from logs import selectors, services
from logs.jsonio import IngestJSONParser
from logs.serializers import (
    AgentLogsOutputSerializer,
    AppendInputSerializer,
    AppendOutputSerializer,
    SessionLogsOutputSerializer,
    SessionOutputSerializer,
    line_payload,
    read_append,
)
from studio.api import MAX_QUERY_INT
from studio.errors import Forbidden, ValidationFailed

MAX_SESSION_PAGE = 5000
MAX_AGENT_PAGE = 1000


class SessionListView(generics.ListAPIView):
    serializer_class = SessionOutputSerializer

    def get_queryset(self):
        agent_id = self.request.query_params.get("agent")
        if agent_id:
            try:
                agent_id = uuid.UUID(agent_id)
            except ValueError:
                raise ValidationFailed(
                    "agent: Must be an agent id.", details={"agent": ["Must be an agent id."]}
                ) from None
        return sessions_for(user=self.request.user, agent_id=agent_id or None)

    @extend_schema(
        parameters=[OpenApiParameter("agent", OpenApiTypes.UUID, description="Only this agent.")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SessionDetailView(generics.RetrieveAPIView):
    serializer_class = SessionOutputSerializer

    def get_object(self):
        return session_get(user=self.request.user, session_id=self.kwargs["session_id"])


class SessionLogsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=MAX_QUERY_INT, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_QUERY_INT, default=500)


class SessionLogsView(APIView):
    @extend_schema(
        parameters=[SessionLogsQuerySerializer],
        responses=SessionLogsOutputSerializer,
        description=f"Lines with seq > after, oldest first; limit at most {MAX_SESSION_PAGE}.",
    )
    def get(self, request, session_id):
        session = session_get(user=request.user, session_id=session_id)
        query = _validated(SessionLogsQuerySerializer, request.query_params)
        limit = min(query["limit"], MAX_SESSION_PAGE)
        payload = selectors.session_lines(session=session, after=query["after"], limit=limit)
        return Response(
            {
                "lines": payload,
                "next_after": payload[-1]["seq"] if payload else query["after"],
                "session": SessionOutputSerializer(session).data,
            }
        )


class AgentLogsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_QUERY_INT, default=100)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_QUERY_INT, default=0)


class AgentLogsView(APIView):
    @extend_schema(
        parameters=[AgentLogsQuerySerializer],
        responses=AgentLogsOutputSerializer,
        description=f"The newest lines across the agent's sessions; limit at most "
        f"{MAX_AGENT_PAGE}.",
    )
    def get(self, request, agent_id):
        agent = agent_get(user=request.user, agent_id=agent_id)
        query = _validated(AgentLogsQuerySerializer, request.query_params)
        limit, offset = min(query["limit"], MAX_AGENT_PAGE), query["offset"]
        lines = list(selectors.agent_lines(agent=agent, limit=limit, offset=offset))
        return Response(
            {
                "lines": [{**line_payload(line), "session_id": line.session_id} for line in lines],
                "limit": limit,
                "offset": offset,
                "next_offset": offset + len(lines) if len(lines) == limit else None,
            }
        )


class LogAppendView(APIView):
    """Sandboxes append lines here with their session's bearer token (docs/protocol.md).

    No session or CSRF auth, no user throttle: the HMAC token is the credential, bound to
    the body's session id. Order, each before any later work: 401 bad header, 413 body
    over DATA_UPLOAD_MAX_MEMORY_SIZE, 400 no session id in the body, 403 wrong token
    (checked on the raw bytes, before parsing), 400 nesting deeper than jsonio.MAX_DEPTH or
    unreadable JSON, 400 bad lines or report, 404 unknown session, 409 token ended (the
    session final for over INGEST_GRACE, or its sandbox stopped).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes = [IngestJSONParser]

    @extend_schema(
        request=AppendInputSerializer,
        responses={
            200: AppendOutputSerializer,
            400: OpenApiResponse(description="Malformed batch"),
            401: OpenApiResponse(description="No or malformed bearer token"),
            403: OpenApiResponse(description="The token is not this session's"),
            404: OpenApiResponse(description="Unknown session"),
            409: OpenApiResponse(description="The token has ended: session final, sandbox gone"),
            413: OpenApiResponse(description="Body too large"),
        },
        auth=[],
    )
    def post(self, request):
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        services.ingest_bearer_token(authorization)  # 401 before the body is even read
        # Reading the body through Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE (413).
        raw = request.body
        session_id = services.ingest_authenticate(authorization=authorization, body=raw)
        batch = read_append(raw)
        if batch.session_id != session_id:
            raise Forbidden("This token does not grant access to that session.")
        result = services.lines_append(batch=batch)
        return Response(AppendOutputSerializer(result).data)


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
