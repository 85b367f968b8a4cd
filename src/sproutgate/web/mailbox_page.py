"""The dev mailbox as a page, for browsers (GET /dev/mailbox with Accept: text/html). The route,
its loopback-only and no-SMTP-only rules and the JSON answer live in api/dev.py."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

from sproutgate.storage.models import OutboxMessage
from sproutgate.web.page import page_context


async def render_mailbox(request: Request, rows: Sequence[OutboxMessage]) -> Response:
    page = await page_context(request)
    return page.render("mailbox.html", messages=rows, to=request.query_params.get("to", ""))
