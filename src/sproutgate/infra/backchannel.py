"""Back-channel logout delivery, the port: one POST of a logout token to a client's
``backchannel_logout_uri`` (OpenID Connect Back-Channel Logout 1.0 §2.5). The HTTP
implementation is ``infra.backchannel_http`` (kept apart so the domain, which names this
Protocol, never imports an HTTP client).

What is queued, when a failed delivery is tried again and when it gives up are the domain's
rules (``domain/backchannel``); its worker hands each due delivery to a ``LogoutTransport``
and records what happened.
"""

from __future__ import annotations

from typing import Protocol

# The answer bodies a client sends back are never needed; errors keep at most this much of one.
ANSWER_PREVIEW = 200


class LogoutRefused(Exception):
    """The client answered, but not with a 2xx (§2.8: 400 for a token it did not accept, 501
    for a logout it could not do ...)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:ANSWER_PREVIEW]}" if body else f"HTTP {status}")
        self.status = status


class LogoutTransport(Protocol):
    """Hands one logout token to one client."""

    async def deliver(self, uri: str, form: dict[str, str]) -> None:
        """POST ``form`` as application/x-www-form-urlencoded to ``uri``; returns on a 2xx
        answer, raises on anything else (LogoutRefused, or the transport's error for a client
        that did not answer)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
