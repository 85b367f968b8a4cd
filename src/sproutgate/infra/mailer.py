"""Mail delivery: the transports that hand one message to the world (SMTP, or the dev mailbox),
and the sealing of a queued message's subject and bodies.

What is queued, in which status, when a failed message is tried again and when it gives up
are the domain's rules (``domain/mail``): its worker hands each due message to a
``MailTransport`` as an ``OutgoingMail`` and records what happened.

The subject and bodies are sealed at rest (``infra.sealing``, key ``data/keys/outbox.key``): they
carry one-time codes. ``seal_mail`` and ``open_mail`` bind each sealed field to its message
(Message-ID and recipient), so a value copied elsewhere does not open.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

from sproutgate.config import Settings
from sproutgate.infra.sealing import KEY_FILE, Sealer, UnsealError

log = logging.getLogger(__name__)

# What listings show instead of a subject or body that does not open with this data dir's keys.
UNREADABLE = f"(cannot be decrypted with data/keys/{KEY_FILE} or a later outbox key)"


class MailTemplates(Protocol):
    """Turns a kind of mail, a language and its values into subject and text (the domain's
    port to the template files; ``infra.mail_templating.JinjaMailTemplates`` is the one
    implementation). Never raises for a bad operator template: it falls back to ours."""

    def render(self, kind: str, lang: str, params: Mapping[str, object]) -> MailText:
        """The mail ``kind`` (a template name such as ``signup_code``) in ``lang`` (i18n.LANGS;
        others fall back to the default), filled with ``params``."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """One message as a transport sends it. ``message_id`` is stable across attempts, so a
    retry after a lost answer is recognisable downstream (delivery is at least once)."""

    message_id: str
    to_addr: str
    subject: str
    text_body: str
    html_body: str | None
    created_at: datetime


class MailTransport(Protocol):
    """Hands one message over for delivery."""

    async def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail``; raises on any failure (the domain's worker decides about a retry)."""
        ...


def new_message_id(mail_from: str) -> str:
    """A fresh RFC 5322 Message-ID in the sender's domain (``<hex@domain>``)."""
    domain = parseaddr(mail_from)[1].partition("@")[2] or "sproutgate.local"
    return f"<{secrets.token_hex(16)}@{domain}>"


def build_email(mail_from: str, mail: OutgoingMail) -> EmailMessage:
    """The MIME message for ``mail``: text, plus an HTML alternative when there is one."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = mail.to_addr
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    msg["Date"] = formatdate(mail.created_at.timestamp(), usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.text_body)
    if mail.html_body is not None:
        msg.add_alternative(mail.html_body, subtype="html")
    return msg


class SmtpTransport:
    """Delivery to the configured SMTP server (``SPROUTGATE_SMTP_*``), one connection per message."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    async def send(self, mail: OutgoingMail) -> None:
        import aiosmtplib

        security = self.s.smtp_security
        await aiosmtplib.send(
            build_email(self.s.mail_from, mail),
            hostname=self.s.smtp_host,
            port=self.s.smtp_port,
            username=self.s.smtp_username or None,
            password=self.s.smtp_password or None,
            use_tls=security == "tls",
            start_tls=True if security == "starttls" else False,
            timeout=self.s.smtp_timeout_seconds,
        )


class DevMailboxTransport:
    """No network: the outbox row itself is the dev mailbox (``GET /dev/mailbox``). Logs the
    recipient only: the subject may carry a code."""

    async def send(self, mail: OutgoingMail) -> None:
        log.info("dev mailbox: message %s to %s", mail.message_id, mail.to_addr)


# -- sealing at rest --------------------------------------------------------------------------
class UnreadableMail(Exception):
    """A queued message whose sealed fields do not open with this data dir's outbox keys."""


@dataclass(frozen=True, slots=True)
class MailText:
    """A message's subject and bodies: sealed (as stored) or in clear, depending on the call."""

    subject: str
    text_body: str
    html_body: str | None


def seal_mail(sealer: Sealer, message_id: str, to_addr: str, clear: MailText) -> MailText:
    """``clear`` sealed for storage in the row of ``message_id`` to ``to_addr``."""

    def seal(field: str, value: str) -> str:
        return sealer.seal(value, field=field, message_id=message_id, to_addr=to_addr)

    return MailText(
        seal("subject", clear.subject),
        seal("text_body", clear.text_body),
        None if clear.html_body is None else seal("html_body", clear.html_body),
    )


def open_mail(sealer: Sealer, message_id: str, to_addr: str, stored: MailText) -> MailText:
    """``stored`` in clear. Rows queued before sealing (no ``enc1:`` prefix) come back as they
    are. Raises UnreadableMail when a sealed field does not open with these keys."""

    def clear(field: str, value: str) -> str:
        return sealer.open(value, field=field, message_id=message_id, to_addr=to_addr)

    try:
        return MailText(
            clear("subject", stored.subject),
            clear("text_body", stored.text_body),
            None if stored.html_body is None else clear("html_body", stored.html_body),
        )
    except UnsealError as exc:
        raise UnreadableMail(
            f"its {exc.field} does not decrypt with data/keys/{KEY_FILE} or a later outbox key: "
            "queued with another outbox key (was the data dir replaced?) or altered"
        ) from exc
