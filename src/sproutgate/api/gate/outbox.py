"""The mail outbox for administrators (/api/admin/outbox): counts per status, recent messages
with their attempts and last error, and a retry. Bodies are never shown: they carry codes; the
subject is decrypted with any code in it masked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from sproutgate.api.deps import get_services
from sproutgate.api.gate.routes import ADMIN_HEADERS, _errors, admin_actor
from sproutgate.api.gate.schemas import iso
from sproutgate.api.problems import CAMEL, wire_field_names
from sproutgate.domain.mail.rules import MailStatus
from sproutgate.domain.mail.service import OutboxCounts, QueuedMail
from sproutgate.domain.registry import DomainServices

router = APIRouter(prefix="/api", dependencies=[Depends(wire_field_names(CAMEL))])
STATUS_PATTERN = "^(" + "|".join(MailStatus) + ")$"


class OutboxCountsOut(BaseModel):
    pending: int
    sending: int
    sent: int
    failed: int
    retrying: int


class OutboxMessageOut(BaseModel):
    id: str
    messageId: str
    to: str
    subject: str
    kind: str
    status: str
    attempts: int
    createdAt: str
    nextAttemptAt: str | None
    sentAt: str | None
    lastError: str | None


class OutboxOut(BaseModel):
    counts: OutboxCountsOut
    total: int
    messages: list[OutboxMessageOut]


class RetriedOut(BaseModel):
    retried: int


def _counts(c: OutboxCounts) -> OutboxCountsOut:
    return OutboxCountsOut(
        pending=c.pending, sending=c.sending, sent=c.sent, failed=c.failed, retrying=c.retrying
    )


def _message(m: QueuedMail) -> OutboxMessageOut:
    return OutboxMessageOut(
        id=m.id,
        messageId=m.message_id,
        to=m.to_addr,
        subject=m.subject,
        kind=m.kind,
        status=m.status,
        attempts=m.attempts,
        createdAt=iso(m.created_at),
        nextAttemptAt=iso(m.next_attempt_at) if m.next_attempt_at else None,
        sentAt=iso(m.sent_at) if m.sent_at else None,
        lastError=m.last_error,
    )


_TAGS: list[str | Any] = ["sproutgate-admin"]


@router.get("/admin/outbox", response_model=OutboxOut, responses=_errors(401, 422), tags=_TAGS)
async def admin_outbox(
    response: Response,
    status: str | None = Query(default=None, pattern=STATUS_PATTERN),
    page: int = Query(default=1, ge=1, le=1_000_000),
    pageSize: int = Query(default=50, ge=1, le=500),  # noqa: N803 - as in /admin/users
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> OutboxOut:
    """Mail outbox: counts per status and recent messages (``status`` filters), newest first."""
    result = await services.mail_outbox.overview(status, page, pageSize)
    response.headers.update(ADMIN_HEADERS)
    return OutboxOut(
        counts=_counts(result.counts),
        total=result.total,
        messages=[_message(m) for m in result.messages],
    )


@router.post(
    "/admin/outbox/{message_id}/retry", response_model=RetriedOut, responses=_errors(401, 404), tags=_TAGS
)
async def admin_outbox_retry(
    message_id: str,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> RetriedOut:
    """Send a failed (or waiting) message again now, with a fresh attempt budget."""
    await services.mail_outbox.retry(message_id)
    response.headers.update(ADMIN_HEADERS)
    return RetriedOut(retried=1)


@router.post("/admin/outbox/retry-failed", response_model=RetriedOut, responses=_errors(401), tags=_TAGS)
async def admin_outbox_retry_failed(
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> RetriedOut:
    """Put every failed message back in line."""
    retried = await services.mail_outbox.retry_failed()
    response.headers.update(ADMIN_HEADERS)
    return RetriedOut(retried=retried)
