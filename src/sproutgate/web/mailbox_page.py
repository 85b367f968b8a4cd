"""The dev mailbox as a page, for browsers (GET /dev/mailbox with Accept: text/html). The route,
its rules (no SMTP, loopback clients, loopback Host names), the JSON answer and the decryption of
the stored messages live in api/dev.py."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from starlette.responses import Response

from sproutgate.infra.mailer import OpenedMail
from sproutgate.web.page import page_context


async def render_mailbox(request: Request, rows: Sequence[OpenedMail] | None) -> Response:
    """The mailbox page; ``rows`` are decrypted already (api/dev.py ``mailbox_messages``).
    ``None``: the mailbox is not open to this request, answer the pages' 404."""
    page = await page_context(request)
    if rows is None:
        return page.render(
            "message.html", status=404, title=page.t("error.title"), message=page.t("error.not_found")
        )
    return page.render("mailbox.html", messages=rows, to=request.query_params.get("to", ""))
