"""Errors of the client registry. Codes are stable: never renamed."""

from __future__ import annotations

from sproutgate.domain.errors import NotFound, Unauthorized


class ClientNotFound(NotFound):
    """No registered client has this ``client_id``."""

    code = "client_not_found"


class InvalidClient(Unauthorized):
    """Client authentication failed (RFC 6749 §5.2 ``invalid_client``): an unknown client, a
    wrong or missing secret for a confidential client, or a secret sent by a public client. One
    answer for all, so the caller learns nothing about which."""

    code = "invalid_client"
