"""Issue 11 item 4: one normalization of addresses at every entry. A user who signed up with a
decomposed accent (NFD) or an internationalized domain in one spelling (Unicode or punycode)
signs in, resets, is found and is looked up with any spelling of the same address."""

from __future__ import annotations

import unicodedata

import pytest
from v1_support import create_user

from sproutgate.domain.accounts.rules import normalize_email
from support.harness import bearer

pytestmark = pytest.mark.both_engines

PASSWORD = "Sprout#2026pw"
NFD = unicodedata.normalize("NFD", "josé@example.com")
NFC = unicodedata.normalize("NFC", "josé@example.com")
UNICODE_DOMAIN = "reader@bücher.example"
PUNYCODE_DOMAIN = "reader@xn--bcher-kva.example"


async def signup(h, email: str) -> dict:
    """The mailed-code sign-up, typed as given; the code arrives at the normalized address."""
    r = await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "reader"}
    )
    assert r.status_code == 202, r.text
    code = await h.last_code(normalize_email(email))
    r = await h.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "registered, other",
    [(NFD, NFC), (NFC, NFD), (UNICODE_DOMAIN, PUNYCODE_DOMAIN), (PUNYCODE_DOMAIN, UNICODE_DOMAIN)],
)
async def test_every_spelling_of_an_address_signs_in_on_both_faces(harness, registered, other):
    assert registered != other
    await signup(harness, registered)
    for spelling in (registered, other, other.upper()):
        r = await harness.client.post("/api/v1/auth/sessions", json={"email": spelling, "password": PASSWORD})
        assert r.status_code == 200, (spelling, r.text)
        r = await harness.client.post("/api/auth/login", json={"account": spelling, "password": PASSWORD})
        assert r.status_code == 200, (spelling, r.text)


async def test_reset_search_and_admin_lookup_take_any_spelling(harness):
    await create_user(harness, UNICODE_DOMAIN)
    session = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": PUNYCODE_DOMAIN, "password": PASSWORD}
    )
    session = session.json()
    stored = session["user"]["email"]
    assert stored == "reader@bücher.example"
    r = await harness.client.post("/api/v1/auth/password-reset", json={"email": PUNYCODE_DOMAIN})
    assert r.status_code == 204
    code = await harness.last_code(stored)
    r = await harness.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": PUNYCODE_DOMAIN, "token": code, "new_password": "Sprout#2026new"},
    )
    assert r.status_code == 204, r.text

    other = await signup(harness, NFD)
    auth = bearer(other["access_token"])
    r = await harness.client.post("/api/v1/users/search", json={"query": PUNYCODE_DOMAIN}, headers=auth)
    assert [u["id"] for u in r.json()] == [session["user"]["id"]]
    r = await harness.client.post("/api/v1/users/search", json={"query": NFC.upper()}, headers=auth)
    assert [u["id"] for u in r.json()] == [other["user"]["id"]]

    await harness.services.admin.set_role(PUNYCODE_DOMAIN, "admin", actor="test")
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": stored, "password": "Sprout#2026new"}
    )
    admin = bearer(r.json()["access_token"])
    r = await harness.client.get("/api/v1/auth/users", params={"email": NFD}, headers=admin)
    assert r.status_code == 200 and r.json()["id"] == other["user"]["id"]


async def test_the_admin_user_list_finds_an_address_in_any_spelling(harness):
    """The admin API's and the console's user list (``AdminService.list_users``): an address
    pasted in punycode, NFD or upper case finds the user stored under its one normalized form,
    and so does a domain searched in punycode."""
    await create_user(harness, UNICODE_DOMAIN)
    nfd_user = await signup(harness, NFD)
    admin = {"X-Admin-Token": harness.services.admin_guard.token}

    async def found(q: str) -> list[str]:
        r = await harness.client.get("/api/admin/users", params={"q": q}, headers=admin)
        assert r.status_code == 200, r.text
        return [u["email"] for u in r.json()["users"]]

    for q in (
        PUNYCODE_DOMAIN,
        UNICODE_DOMAIN,
        PUNYCODE_DOMAIN.upper(),
        "xn--bcher-kva.example",
        "XN--BCHER-KVA",
    ):
        assert await found(q) == ["reader@bücher.example"], q
    for q in (NFD, NFC, NFD.upper()):
        assert await found(q) == [nfd_user["user"]["email"]], q
    assert await found("reader@xn--bcher-kvb.example") == []  # another domain
    # The console's list is the same service.
    total, users = await harness.services.admin.list_users(PUNYCODE_DOMAIN, 1, 50)
    assert total == 1 and users[0].user.email == "reader@bücher.example"
