"""api.middleware.ProxyHeaders: the one place the client address (and scheme) is worked out,
driven as pure ASGI (no HTTP), then the pages' cookie flags that follow from it."""

from __future__ import annotations

from typing import Any

import pytest

from sproutgate.api.middleware import ProxyHeaders, trusted_networks

PEER = "127.0.0.1"


async def resolve(trusted: list[str], peer: str = PEER, **headers: str) -> tuple[str, str]:
    """(client host, scheme) the app behind ProxyHeaders sees for one request."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["client"], seen["scheme"] = scope["client"], scope["scheme"]

    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 50000),
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await ProxyHeaders(app, trusted)(scope, None, None)
    return seen["client"][0], seen["scheme"]


async def test_the_right_most_hop_that_is_not_a_trusted_proxy_is_the_client():
    trusted = ["127.0.0.1", "10.0.0.0/8"]
    # The client wrote the left-most entry itself; our proxies appended the rest.
    hops = "203.0.113.5, 198.51.100.7, 10.0.0.2"
    assert (await resolve(trusted, x_forwarded_for=hops))[0] == "198.51.100.7"


async def test_forwarded_addresses_count_only_from_a_trusted_peer():
    assert (await resolve(["10.0.0.1"], x_forwarded_for="198.51.100.7"))[0] == PEER
    assert (await resolve(["127.0.0.1"], peer="192.0.2.10", x_forwarded_for="198.51.100.7"))[
        0
    ] == "192.0.2.10"


async def test_when_every_hop_is_trusted_the_left_most_one_is_the_client():
    assert (await resolve(["127.0.0.0/8"], x_forwarded_for="127.0.0.2, 127.0.0.3"))[0] == "127.0.0.2"


@pytest.mark.parametrize("junk", ["not-an-ip", "x" * 300, "198.51.100.7<script>"])
async def test_a_hop_that_is_not_an_address_is_not_believed(junk):
    assert (await resolve(["127.0.0.1"], x_forwarded_for=junk))[0] == PEER


async def test_no_or_empty_forwarded_header_leaves_the_peer():
    assert (await resolve(["127.0.0.1"]))[0] == PEER
    assert (await resolve(["127.0.0.1"], x_forwarded_for=""))[0] == PEER


async def test_a_hop_with_a_port_gives_its_address():
    assert (await resolve(["127.0.0.1"], x_forwarded_for="198.51.100.7:4711"))[0] == "198.51.100.7"


async def test_the_scheme_follows_x_forwarded_proto_from_a_trusted_peer_only():
    assert (await resolve(["127.0.0.1"], x_forwarded_proto="https"))[1] == "https"
    assert (await resolve(["10.0.0.1"], x_forwarded_proto="https"))[1] == "http"


def test_trusted_proxies_are_addresses_or_networks_and_nothing_else():
    assert trusted_networks(["127.0.0.1", " 10.1.2.3/8", "::1", "2001:db8::/32", "*", "proxy.local", ""]) == [
        "127.0.0.1",
        "10.0.0.0/8",
        "::1",
        "2001:db8::/32",
    ]


async def test_a_wildcard_does_not_trust_everyone():
    assert (await resolve(["*"], x_forwarded_for="198.51.100.7"))[0] == PEER


# -- what follows from it, over the app ------------------------------------------------------
async def _cookie_flags(h: Any, **headers: str) -> str:
    """The Set-Cookie of the CSRF nonce a first visit gets (set_cookie's flags, as for every
    cookie of the pages)."""
    r = await h.new_client(**headers).get("/login")
    return next(c for c in r.headers.get_list("set-cookie") if c.startswith("sg_csrf="))


async def test_the_pages_cookies_are_secure_when_a_trusted_proxy_says_https(make_harness, make_settings):
    h = await make_harness(make_settings(admin_token="t" * 24))
    assert "Secure" in await _cookie_flags(h, **{"X-Forwarded-Proto": "https"})
    assert "Secure" not in await _cookie_flags(h)


async def test_an_untrusted_peer_cannot_claim_https(make_harness, make_settings):
    h = await make_harness(make_settings(admin_token="t" * 24, trusted_proxies=[]))
    assert "Secure" not in await _cookie_flags(h, **{"X-Forwarded-Proto": "https"})


async def test_the_session_records_the_forwarded_client(harness):
    r = await harness.client.post(
        "/api/admin/users",
        json={"account": "seen", "email": "seen@example.com", "password": "Sprout#2026pw"},
        headers={"X-Admin-Token": harness.services.admin_guard.token},
    )
    assert r.status_code == 201, r.text
    client = harness.new_client("198.51.100.23")
    r = await client.post(
        "/api/v1/auth/sessions", json={"email": "seen@example.com", "password": "Sprout#2026pw"}
    )
    assert r.status_code in (200, 201), r.text
    user_id = (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    ).json()["id"]
    [session] = await harness.services.sessions.list_for_user(user_id)
    assert session.ip == "198.51.100.23"
