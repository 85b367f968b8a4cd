"""Back-channel logout on every path a session ends by (OpenID Connect Back-Channel Logout 1.0):
a person signs in to apps through the hosted pages; when that sign-in ends (sign-out on the
pages, a password reset, the account disabled or deleted), every app it was used with that
registered a back-channel logout URI receives a logout token at a real HTTP receiver, which
checks it against /.well-known/jwks.json and the spec (§2.6). Apps without such a URI, and
sessions no app was used with, send nothing."""

from __future__ import annotations

import re

import pytest
from logout_support import page_csrf, register_app, sign_in_to_app
from oidc_support import PASSWORD, make_person

from sproutgate.domain.sessions.service import listen_to_session_ends
from support.backchannel import LogoutReceiver, validate_logout_token
from support.harness import AppHarness
from support.waiting import wait_until

pytestmark = pytest.mark.both_engines

ISSUER = "http://testserver"
FAST = {
    "admin_token": "backchannel-admin-token",
    "backchannel_logout_retry_base_seconds": 0.2,
    "backchannel_logout_retry_max_seconds": 0.5,
}


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(**FAST))


@pytest.fixture
def receiver():
    with LogoutReceiver() as r:
        yield r


async def _jwks(h: AppHarness) -> dict:
    return (await h.client.get("/.well-known/jwks.json")).json()


def _id_claims(token: str) -> dict:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})


async def _two_apps_signed_in(h: AppHarness, receiver: LogoutReceiver):
    """Apps A and B (both with a back-channel URI) and C (without) used by one browser sign-in;
    the person, the browser and the ``sid`` the ID tokens name."""
    a = await register_app(h, backchannel=receiver.uri)
    b = await register_app(h, backchannel=receiver.uri)
    c = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    tokens = [await sign_in_to_app(h, browser, cid, secret, person) for cid, secret in (a, b, c)]
    sids = {_id_claims(t["id_token"])["sid"] for t in tokens}
    assert len(sids) == 1  # single sign-on: one browser sign-in behind all three
    return (a[0], b[0], c[0]), person, browser, sids.pop()


async def _expect_logouts(
    h: AppHarness, receiver: LogoutReceiver, apps: tuple[str, ...], person: dict, sid: str
):
    got = await receiver.wait_for(len(apps))
    jwks = await _jwks(h)
    seen = {}
    for logout in got:
        assert logout.content_type == "application/x-www-form-urlencoded"
        aud = _id_claims(logout.token)["aud"]
        claims = validate_logout_token(logout.token, jwks, ISSUER, aud)
        assert claims["sub"] == person["id"] and claims["sid"] == sid
        seen[aud] = claims["jti"]
    assert sorted(seen) == sorted(apps), (seen, apps)
    assert len(set(seen.values())) == len(apps)  # a jti of its own each
    return got


async def _signed_out(browser) -> bool:
    r = await browser.get("/account")
    return r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_signing_out_on_the_pages_tells_each_app_with_a_backchannel_uri(h, receiver):
    (a, b, c), person, browser, sid = await _two_apps_signed_in(h, receiver)
    csrf = await page_csrf(browser)
    r = await browser.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    await _expect_logouts(h, receiver, (a, b), person, sid)
    assert await _signed_out(browser)
    counts = await h.services.backchannel.counts()
    await wait_until(lambda: _delivered(h, 2), what="both recorded delivered")
    assert counts["failed"] == 0


async def _delivered(h: AppHarness, n: int) -> bool:
    return (await h.services.backchannel.counts())["delivered"] == n


async def test_a_password_reset_tells_the_apps(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    r = await h.client.post("/api/v1/auth/password-reset", json={"email": person["email"]})
    assert r.status_code == 204
    code = await h.last_code(person["email"])
    r = await h.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": person["email"], "token": code, "new_password": PASSWORD + "-new"},
    )
    assert r.status_code == 204, r.text
    await _expect_logouts(h, receiver, (a, b), person, sid)
    assert await _signed_out(browser)


async def test_disabling_the_account_tells_the_apps(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    r = await h.client.put(
        f"/api/admin/users/{person['account']}",
        json={"disabled": True},
        headers={"X-Admin-Token": FAST["admin_token"]},
    )
    assert r.status_code == 200, r.text
    await _expect_logouts(h, receiver, (a, b), person, sid)


async def test_deleting_the_account_tells_the_apps(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    r = await h.client.delete(
        f"/api/admin/users/{person['account']}", headers={"X-Admin-Token": FAST["admin_token"]}
    )
    assert r.status_code == 200, r.text
    await _expect_logouts(h, receiver, (a, b), person, sid)
    assert await _signed_out(browser)


async def test_deleting_your_own_account_on_the_page_tells_the_apps(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    csrf = await page_csrf(browser, "/account/delete")
    r = await browser.post("/account/delete", data={"csrf_token": csrf, "password": PASSWORD})
    assert r.status_code == 303, r.text
    await _expect_logouts(h, receiver, (a, b), person, sid)


async def test_sessions_no_app_was_used_with_send_nothing(h, receiver):
    await register_app(h, backchannel=receiver.uri)
    person = await make_person(h)
    # An API sign-in, signed out again: no app was signed in through it.
    r = await h.client.post("/api/v1/auth/sessions", json={"email": person["email"], "password": PASSWORD})
    r = await h.client.request(
        "DELETE", "/api/v1/auth/sessions", json={"refresh_token": r.json()["refresh_token"]}
    )
    assert r.status_code == 204
    r = await h.client.put(
        f"/api/admin/users/{person['account']}",
        json={"disabled": True},
        headers={"X-Admin-Token": FAST["admin_token"]},
    )
    assert r.status_code == 200
    assert await h.services.backchannel.counts() == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0}
    assert receiver.received == []


async def test_a_second_sign_out_of_an_ended_session_sends_nothing_more(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    cookie = browser.cookies.get("sg_session")
    csrf = await page_csrf(browser)
    await browser.post("/logout", data={"csrf_token": csrf})
    await _expect_logouts(h, receiver, (a, b), person, sid)
    # The admin ends every session of the person afterwards: this one had ended already.
    r = await h.client.put(
        f"/api/admin/users/{person['account']}",
        json={"disabled": True},
        headers={"X-Admin-Token": FAST["admin_token"]},
    )
    assert r.status_code == 200 and cookie
    await wait_until(lambda: _delivered(h, 2), what="two delivered")
    assert (await h.services.backchannel.counts())["pending"] == 0
    assert len(receiver.received) == 2
    assert re.fullmatch(r"[0-9a-f-]{36}", sid)


class _Refusing:
    """A listener that fails after back-channel logout queued its deliveries."""

    async def sessions_ended(self, s, ended) -> None:
        raise RuntimeError("refused")


async def test_the_notices_are_queued_in_the_transaction_that_ends_the_session(h, receiver):
    (a, b, _), person, browser, sid = await _two_apps_signed_in(h, receiver)
    listen_to_session_ends(h.services.db, _Refusing())
    with pytest.raises(RuntimeError):
        await h.services.sessions.revoke_all_for_user(person["id"])
    # Rolled back as one: the session still counts, and no notice was queued or sent.
    assert not await _signed_out(browser)
    assert await h.services.backchannel.counts() == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0}
    assert receiver.received == []
