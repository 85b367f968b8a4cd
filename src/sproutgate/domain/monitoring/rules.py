"""Who may read the server's metrics. Pure: no I/O."""

from __future__ import annotations

import hmac


def may_scrape(expected_token: str, presented_token: str | None, local_client: bool) -> bool:
    """With no ``expected_token`` (SPROUTGATE_METRICS_TOKEN unset), a client on this machine
    only (``local_client``: the face's word that the caller is a loopback client forwarding for
    nobody else). With one, exactly that bearer token, from anywhere, loopback included;
    compared in constant time."""
    if not expected_token:
        return local_client
    return hmac.compare_digest((presented_token or "").encode(), expected_token.encode())
