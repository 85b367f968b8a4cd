"""The chat page: a shell whose script talks to /api/v1/agent-chats with the session cookie
(same-origin only, CSRF header on unsafe calls; see security.cookie_principal_hook)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sproutgate.web.page import Page, page_context

router = APIRouter(include_in_schema=False)


@router.get("/chat")
async def chat(page: Page = Depends(page_context)) -> Response:
    """Conversations with the account assistant."""
    page.require_user()
    return page.render("chat.html")
