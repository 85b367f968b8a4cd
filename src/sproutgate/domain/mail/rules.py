"""Outbox rules: a message's statuses, which messages are due, how often and how soon a failed
one is tried again, and what administrators may see of a message. Pure: no I/O.

A message's life: ``pending`` (waiting for ``next_attempt_at``) -> ``sending`` (claimed by one
worker until ``locked_until``) -> ``sent``; a failed attempt puts it back to ``pending`` after a
backoff, or to ``failed`` once its attempt budget is spent (or its sealed text does not open);
an operator's retry puts ``failed`` (or still ``pending``) mail back in line with a fresh budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sproutgate.config import Settings


class MailStatus(StrEnum):
    """Where a queued message is; stored with it, so values never change."""

    PENDING = "pending"  # waits for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until locked_until
    SENT = "sent"
    FAILED = "failed"  # out of attempts or unreadable: waits for an operator's retry


# What "due" means: a PENDING message whose next attempt has come, or a SENDING one whose
# lease ran out (its worker died mid-send). Storage turns this pair into its query.
DUE_WAITING = MailStatus.PENDING
DUE_LEASED = MailStatus.SENDING
# Still on its way: listings show when the next attempt is.
WAITING = frozenset({MailStatus.PENDING, MailStatus.SENDING})
# What an operator's retry of one message may put back in line (retry-all takes FAILED only).
RETRYABLE = (MailStatus.FAILED, MailStatus.PENDING)

BATCH_SIZE = 20  # due messages claimed per pass; a full batch means look again at once
DELIVERIES_AT_ONCE = 4  # SMTP connections per process
# After a message went out, marking it sent is retried this long (seconds between tries): a
# lease that expires on a row that was really sent would send it twice.
MARK_SENT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
LAST_ERROR_MAX = 1000  # characters of a delivery error kept with the message


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with a ceiling and an attempt budget (``SPROUTGATE_MAIL_*``)."""

    base_seconds: float
    max_seconds: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.mail_retry_base_seconds, settings.mail_retry_max_seconds, settings.mail_max_attempts
        )

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt (1-based): base, 2x, 4x ...
        up to the ceiling."""
        return timedelta(seconds=min(self.max_seconds, self.base_seconds * (2 ** max(0, attempts - 1))))

    def gives_up(self, attempts: int) -> bool:
        """True once ``attempts`` failed attempts spent the budget: the message is ``failed``."""
        return attempts >= self.max_attempts


def lease(smtp_timeout_seconds: float) -> timedelta:
    """How long a claimed message stays with its worker: long enough for a slow SMTP answer
    (three timeouts), never under a minute."""
    return timedelta(seconds=max(60.0, smtp_timeout_seconds * 3))


def error_text(exc: BaseException) -> str:
    """A delivery error as kept with the message (type and text, bounded)."""
    return f"{type(exc).__name__}: {exc}"[:LAST_ERROR_MAX]


CODE_IN_TEXT = re.compile(r"(?<!\d)\d{6}(?!\d)")
CODE_MASK = "******"


def mask_codes(text: str) -> str:
    """``text`` with every 6-digit code replaced by ``******``: what administrators' listings
    show of a subject (bodies are never shown)."""
    return CODE_IN_TEXT.sub(CODE_MASK, text)
