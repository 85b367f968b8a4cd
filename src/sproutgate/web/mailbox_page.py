"""The dev mailbox as a page, for browsers (GET /dev/mailbox with Accept: text/html). The route,
its loopback-only and no-SMTP-only rules and the JSON answer live in api/dev.py, which calls
this through ``api.deps.ApiHooks.mailbox_page`` (wired by create_app)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

from sproutgate.domain.mail.service import OpenedMail
from sproutgate.web.page import page_context


async def render_mailbox(request: Request, messages: Sequence[OpenedMail]) -> Response:
    """``messages`` are in clear already (``OutboxService.dev_mailbox``)."""
    page = await page_context(request)
    return page.render("mailbox.html", messages=messages, to=request.query_params.get("to", ""))
