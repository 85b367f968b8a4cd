"""MACs a request brings (the CSRF token of a form or of the passkey scripts' header, the
device cookie, the second-factor enrolment cookie) with characters outside ASCII: refused as
any wrong value is, never a 500. ``hmac.compare_digest`` raises TypeError for str holding
non-ASCII characters, and form fields, headers and cookies are the caller's choice (a header or
cookie byte 0xE9 arrives as "é"). docs/security.md, "Hostile input"."""

from __future__ import annotations

import httpx
import pytest
from test_pages_http import PASSWORD, form_token, make_user

pytestmark = pytest.mark.both_engines

NON_ASCII = "\u00e9t\u00e9"  # what the byte 0xE9 in a header or cookie becomes, and a form's "é"


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token="hostile-bytes-admin-token"))


def cookie_header(client: httpx.AsyncClient, **extra: str) -> bytes:
    """The client's cookies plus ``extra``, as the raw header a browser could send (latin-1)."""
    jar = {k: v for k, v in client.cookies.items() if k not in extra}
    return "; ".join(f"{k}={v}" for k, v in {**jar, **extra}.items()).encode("latin-1")


async def signed_in(h, user: dict) -> httpx.AsyncClient:
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return client


async def test_a_form_with_a_non_ascii_csrf_token_is_refused_as_a_forged_one(h):
    user = await make_user(h)
    client = h.new_client()
    await form_token(client, "/login")
    r = await client.post(
        "/login", data={"csrf_token": NON_ASCII, "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 403, r.text
    # The same on a form of today's features (removing a passkey), signed in.
    client = await signed_in(h, user)
    r = await client.post("/account/passkeys/x/remove", data={"csrf_token": NON_ASCII})
    assert r.status_code == 403, r.text


async def test_a_passkey_script_header_with_non_ascii_bytes_is_a_403_problem(h):
    client = h.new_client()
    await form_token(client, "/login")
    r = await client.post(
        "/login/passkey/options",
        content=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-CSRF-Token": NON_ASCII.encode("latin-1"),
            "Accept-Language": "en",
        },
    )
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "csrf_failed"


async def test_a_device_cookie_with_non_ascii_bytes_is_a_new_device(h):
    user = await make_user(h)
    client = h.new_client()
    token = await form_token(client, "/login")
    r = await client.post(
        "/login",
        data={"csrf_token": token, "identifier": user["account"], "password": PASSWORD},
        headers={"Cookie": cookie_header(client, sg_device=f"abc.{NON_ASCII}")},
    )
    assert r.status_code == 303, r.text
    issued = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("sg_device=")]
    assert issued and NON_ASCII not in issued[0]  # a cookie of ours replaces it


async def test_an_enrolment_cookie_with_non_ascii_bytes_shows_no_secret(h):
    user = await make_user(h)
    client = await signed_in(h, user)
    r = await client.get(
        "/account/mfa/totp", headers={"Cookie": cookie_header(client, sg_mfa_enrolment=NON_ASCII)}
    )
    assert r.status_code in (200, 303), r.text
    assert "otpauth://" not in r.text
