"""The agent's HTTP face under /api/v1: a thin translation of AgentChatService."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from sproutgate.agent import schemas as S
from sproutgate.agent.service import AgentChatService, agent_service
from sproutgate.agent.sse import EventStreamResponse
from sproutgate.api.deps import current_principal, get_services
from sproutgate.api.problems import lang_of
from sproutgate.api.v1.schemas import Problem
from sproutgate.domain.chats.rules import LIST_LIMIT
from sproutgate.domain.registry import DomainServices as Services
from sproutgate.domain.sessions.service import Principal

log = logging.getLogger(__name__)


@asynccontextmanager
async def _prepare_agent(app: FastAPI) -> AsyncIterator[None]:
    # Build the model client at startup: loading the OpenAI SDK takes seconds, which would
    # otherwise land on the first user's request. A failure here is retried on first use.
    try:
        agent_service(app.state.services)
    except Exception:
        log.exception("the agent could not be prepared at startup")
    yield


router = APIRouter(prefix="/api/v1", tags=["agent"], lifespan=_prepare_agent)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        c: {"model": Problem, "content": {"application/problem+json": {}}, "description": str(c)}
        for c in codes
    }


def get_agent(services: Services = Depends(get_services)) -> AgentChatService:
    return agent_service(services)


def wants_event_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "").lower()


_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The run's events as JSON, or with `Accept: text/event-stream` as Server-Sent Events "
        "(`event: <type>` / `data: <event JSON>`) written as they happen, with `: keep-alive` comment "
        "lines while the run is quiet.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/agent-chats",
    response_model=S.AgentChatOut,
    responses={**_STREAM_DOC, **_errors(401, 404, 422, 429, 503)},
)
async def run_agent_chat(
    body: S.AgentChatCreate,
    request: Request,
    principal: Principal = Depends(current_principal),
    agent: AgentChatService = Depends(get_agent),
) -> Response:
    """Run the agent on a message, in a new conversation or a continued one (needs authentication)."""
    run = await agent.start_run(
        principal,
        body.message,
        str(body.session_id) if body.session_id is not None else None,
        lang=lang_of(request),
    )
    if wants_event_stream(request):
        return EventStreamResponse(run.events(), keepalive_seconds=agent.settings.agent_sse_keepalive_seconds)
    events = [event.as_dict() async for event in run.events()]
    return JSONResponse(
        {"session_id": run.session_id, "output": run.output, "events": events},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/agent-chats", response_model=list[S.AgentChatSummary], responses=_errors(401, 422))
async def list_agent_chats(
    response: Response,
    limit: int = Query(LIST_LIMIT, ge=1, le=LIST_LIMIT, description="Conversations per page."),
    before: str | None = Query(
        None, max_length=200, description="The cursor of the next page, from the previous page's Link header."
    ),
    principal: Principal = Depends(current_principal),
    agent: AgentChatService = Depends(get_agent),
) -> list[S.AgentChatSummary]:
    """The signed-in user's conversations, most recently used first, a page at a time. When more
    follow, the `Link` header names the next page (`rel="next"`, with its `before` cursor)."""
    page, next_cursor = await agent.list_chats(principal, limit, before)
    if next_cursor is not None:
        query = urlencode({"limit": limit, "before": next_cursor})
        response.headers["Link"] = f'</api/v1/agent-chats?{query}>; rel="next"'
    return [
        S.AgentChatSummary(session_id=c.id, title=c.title, created_at=c.created_at, updated_at=c.updated_at)
        for c in page
    ]


@router.get(
    "/agent-chats/{session_id}",
    response_model=S.AgentChatDetail,
    response_model_exclude_none=True,
    responses=_errors(401, 404),
)
async def get_agent_chat(
    session_id: str,
    principal: Principal = Depends(current_principal),
    agent: AgentChatService = Depends(get_agent),
) -> S.AgentChatDetail:
    """One of the signed-in user's conversations, as a transcript."""
    chat = await agent.get_chat(principal, session_id)
    return S.AgentChatDetail(
        session_id=chat.id,
        title=chat.title,
        created_at=chat.created_at,
        updated_at=chat.updated_at,
        messages=[S.AgentChatMessage(**m) for m in chat.messages],
    )


@router.delete("/agent-chats/{session_id}", status_code=204, responses=_errors(401, 404))
async def delete_agent_chat(
    session_id: str,
    principal: Principal = Depends(current_principal),
    agent: AgentChatService = Depends(get_agent),
) -> Response:
    """Delete one of the signed-in user's conversations."""
    await agent.delete_chat(principal, session_id)
    return Response(status_code=204)
