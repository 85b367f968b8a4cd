"""The dev mailbox as a page, for browsers (GET /dev/mailbox with Accept: text/html). The route,
its rules (no SMTP, loopback clients, loopback Host names) and the JSON answer live in
api/dev.py, which calls this through ``api.deps.ApiHooks.mailbox_page`` (wired by create_app)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

from sproutgate.domain.mail.service import OpenedMail
from sproutgate.web.page import page_context


async def render_mailbox(request: Request, rows: Sequence[OpenedMail] | None) -> Response:
    """The mailbox page; ``rows`` are in clear already (``OutboxService.dev_mailbox``).
    ``None``: the mailbox is not open to this request, answer the pages' 404."""
    page = await page_context(request)
    if rows is None:
        return page.not_found()
    return page.render("mailbox.html", messages=rows, to=request.query_params.get("to", ""))
