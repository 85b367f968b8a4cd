"""The chat page: a shell whose script talks to /api/v1/agent-chats with the session cookie
(same-origin only, CSRF header on unsafe calls; see security.cookie_principal_hook). Without a
configured model there is no assistant to offer: users are told so, administrators how to
configure one."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sproutgate.web.page import Page, page_context

router = APIRouter(include_in_schema=False)


@router.get("/chat")
async def chat(page: Page = Depends(page_context)) -> Response:
    """Conversations with the account assistant."""
    principal = page.require_user()
    if not page.agent_offered:
        return page.render("chat_unavailable.html", admin=principal.user.role == "admin")
    return page.render("chat.html")
