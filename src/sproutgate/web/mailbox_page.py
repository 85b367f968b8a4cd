"""The dev mailbox as a page, for browsers (GET /dev/mailbox with Accept: text/html). The route,
its loopback-only and no-SMTP-only rules, the JSON answer and the decryption of the stored
messages live in api/dev.py."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

from sproutgate.infra.mailer import OpenedMail
from sproutgate.web.page import page_context


async def render_mailbox(request: Request, rows: Sequence[OpenedMail]) -> Response:
    """``rows`` are decrypted already (api/dev.py ``mailbox_messages``)."""
    page = await page_context(request)
    return page.render("mailbox.html", messages=rows, to=request.query_params.get("to", ""))
