"""Who may read the server's metrics. Pure: no I/O."""

from __future__ import annotations

import hmac


def may_scrape(
    expected_token: str, presented_token: str | None, local_client: bool, *, loopback_name: bool
) -> bool:
    """With no ``expected_token`` (SPROUTGATE_METRICS_TOKEN unset), a client on this machine
    only (``local_client``: the face's word that the caller is a loopback client forwarding for
    nobody else) that names the machine by a loopback name (``loopback_name``: the Host header
    is ``localhost`` or a loopback address). The name matters because of DNS rebinding: a page
    whose own name now resolves to 127.0.0.1 reads this server's answers in a browser on the
    host, from a loopback client, but under its own name (the dev mailbox's rule too). With a
    token, exactly that bearer token, from anywhere, loopback included; compared in constant
    time."""
    if not expected_token:
        return local_client and loopback_name
    return hmac.compare_digest((presented_token or "").encode(), expected_token.encode())
