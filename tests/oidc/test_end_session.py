"""The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), GET and POST: with an
``id_token_hint`` naming the signed-in person the single sign-on session ends at once and the
browser goes back to the app's registered ``post_logout_redirect_uri`` with ``state``; an
unregistered URI ends on a signed-out page; without a hint the person is asked first (in their
language); a hint this provider did not issue, or a ``client_id`` that is not its audience, is
refused with an error page, never a redirect. The apps are told by back-channel logout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from logout_support import AFTER_LOGOUT, register_app, sign_in_to_app
from oidc_support import csrf_of, make_person

from support.backchannel import LogoutReceiver, validate_logout_token
from support.harness import AppHarness

pytestmark = pytest.mark.both_engines

ISSUER = "http://testserver"


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="end-session-admin-token"))


async def _signed_in(h: AppHarness, **app):
    client_id, secret = await register_app(h, **app)
    person = await make_person(h)
    browser = h.new_client()
    tokens = await sign_in_to_app(h, browser, client_id, secret, person)
    return client_id, person, browser, tokens["id_token"]


async def _still_signed_in(browser) -> bool:
    return (await browser.get("/account")).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_hint_ends_the_session_and_returns_to_the_registered_uri_with_state(h, method):
    with LogoutReceiver() as receiver:
        client_id, person, browser, id_token = await _signed_in(h, backchannel=receiver.uri)
        sid = jwt.decode(id_token, options={"verify_signature": False})["sid"]
        params = {"id_token_hint": id_token, "post_logout_redirect_uri": AFTER_LOGOUT, "state": "xyz 1"}
        if method == "GET":
            r = await browser.get("/oauth2/logout", params=params)
        else:
            r = await browser.post("/oauth2/logout", data=params)
        assert r.status_code == 303, r.text
        target = urlsplit(r.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == AFTER_LOGOUT
        assert parse_qs(target.query) == {"state": ["xyz 1"]}
        assert "sg_session" in r.headers.get("set-cookie", "")  # the cookie is cleared
        assert not await _still_signed_in(browser)
        [got] = await receiver.wait_for(1)
        jwks = (await h.client.get("/.well-known/jwks.json")).json()
        claims = validate_logout_token(got.token, jwks, ISSUER, client_id)
        assert claims["sid"] == sid and claims["sub"] == person["id"]


async def test_client_id_with_the_hint_must_be_its_audience(h):
    client_id, _, browser, id_token = await _signed_in(h)
    other, _ = await register_app(h)
    r = await browser.get("/oauth2/logout", params={"id_token_hint": id_token, "client_id": other})
    assert r.status_code == 400 and "location" not in r.headers
    assert "invalid_request" in r.text
    assert await _still_signed_in(browser)
    r = await browser.get(
        "/oauth2/logout",
        params={"id_token_hint": id_token, "client_id": client_id, "post_logout_redirect_uri": AFTER_LOGOUT},
    )
    assert r.status_code == 303 and r.headers["location"] == AFTER_LOGOUT


async def test_an_unregistered_post_logout_uri_ends_on_the_signed_out_page(h):
    _, _, browser, id_token = await _signed_in(h)
    r = await browser.get(
        "/oauth2/logout",
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "https://evil.example/x",
            "state": "s",
        },
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/oauth2/logout/done"
    assert not await _still_signed_in(browser)
    r = await browser.get(r.headers["location"], headers={"Accept-Language": "en"})
    assert r.status_code == 200 and "You are signed out of SproutGate" in r.text
    r = await browser.get("/oauth2/logout/done", headers={"Accept-Language": "zh-CN"})
    assert "你已退出 SproutGate" in r.text


async def test_a_registered_uri_of_another_client_is_not_followed(h):
    _, _, browser, id_token = await _signed_in(h, post_logout=("https://app.example/mine",))
    await register_app(h, post_logout=("https://other.example/theirs",))
    r = await browser.get(
        "/oauth2/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": "https://other.example/theirs"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/oauth2/logout/done"


async def test_without_a_hint_the_person_is_asked_first_in_their_language(h):
    client_id, _, browser, _ = await _signed_in(h, name="Orchard Notes")
    params = {"client_id": client_id, "post_logout_redirect_uri": AFTER_LOGOUT, "state": "abc"}
    r = await browser.get("/oauth2/logout", params=params, headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 200
    assert "Orchard Notes 请求让你退出 SproutGate" in r.text
    assert await _still_signed_in(browser)  # nothing ended yet
    # The app's ui_locales wins over the browser's language.
    r = await browser.get(
        "/oauth2/logout", params={**params, "ui_locales": "en-GB"}, headers={"Accept-Language": "zh-CN"}
    )
    assert "Orchard Notes asks to sign you out of SproutGate" in r.text
    # The page lets its form lead to the app (form-action covers the redirect after it).
    assert "https://app.example" in r.headers["content-security-policy"].split("form-action")[1].split(";")[0]
    # A confirmation without the page's CSRF token is refused.
    r2 = await browser.post("/oauth2/logout/confirm", data=params)
    assert r2.status_code == 403 and await _still_signed_in(browser)
    r = await browser.post("/oauth2/logout/confirm", data={**params, "csrf_token": csrf_of(r.text)})
    assert r.status_code == 303 and r.headers["location"] == AFTER_LOGOUT + "?state=abc"
    assert not await _still_signed_in(browser)


async def test_without_a_hint_or_client_the_confirmation_ends_on_the_signed_out_page(h):
    _, _, browser, _ = await _signed_in(h)
    r = await browser.get("/oauth2/logout", headers={"Accept-Language": "en"})
    assert r.status_code == 200 and "Sign out of SproutGate?" in r.text
    r = await browser.post(
        "/oauth2/logout/confirm", data={"csrf_token": csrf_of(r.text)}, headers={"Accept-Language": "en"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/oauth2/logout/done"
    assert not await _still_signed_in(browser)


async def test_a_hint_for_someone_else_asks_before_ending_this_persons_session(h):
    client_id, secret = await register_app(h)
    first, second = await make_person(h), await make_person(h)
    other_browser = h.new_client()
    their_token = (await sign_in_to_app(h, other_browser, client_id, secret, second))["id_token"]
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, first)
    r = await browser.get("/oauth2/logout", params={"id_token_hint": their_token})
    assert r.status_code == 200 and 'action="/oauth2/logout/confirm"' in r.text
    assert await _still_signed_in(browser) and await _still_signed_in(other_browser)


async def test_an_expired_hint_still_counts(h):
    _, _, browser, id_token = await _signed_in(h)
    exp = jwt.decode(id_token, options={"verify_signature": False})["exp"]
    h.clock.advance(exp - h.clock.now().timestamp() + 60)
    r = await browser.get(
        "/oauth2/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": AFTER_LOGOUT}
    )
    assert r.status_code == 303 and r.headers["location"] == AFTER_LOGOUT


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-token",
        # Signed by someone else.
        jwt.encode({"iss": ISSUER, "sub": "x", "aud": "y", "exp": 4102444800}, "k" * 32, algorithm="HS256"),
    ],
)
async def test_a_hint_this_provider_did_not_issue_is_refused(h, bad):
    _, _, browser, _ = await _signed_in(h)
    r = await browser.get(
        "/oauth2/logout",
        params={"id_token_hint": bad, "post_logout_redirect_uri": AFTER_LOGOUT},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 400 and "location" not in r.headers
    assert "This sign-out request was not accepted" in r.text
    assert await _still_signed_in(browser)


async def test_an_access_token_is_no_hint(h):
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    tokens = await sign_in_to_app(h, browser, client_id, secret, person)
    r = await browser.get("/oauth2/logout", params={"id_token_hint": tokens["access_token"]})
    assert r.status_code == 400 and await _still_signed_in(browser)


async def test_unknown_client_repeated_parameter_and_overlong_value_are_refused(h):
    browser = h.new_client()
    r = await browser.get("/oauth2/logout", params={"client_id": "no-such-client"})
    assert r.status_code == 400
    r = await browser.get("/oauth2/logout?state=a&state=b")
    assert r.status_code == 400
    r = await browser.get("/oauth2/logout", params={"state": "s" * 9000})
    assert r.status_code == 400


async def test_nobody_signed_in_goes_straight_back_to_the_app(h):
    _, _, browser, id_token = await _signed_in(h)
    stranger = h.new_client()
    r = await stranger.get(
        "/oauth2/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": AFTER_LOGOUT, "state": "q"},
    )
    assert r.status_code == 303 and r.headers["location"] == AFTER_LOGOUT + "?state=q"
    assert await _still_signed_in(browser)  # someone else's browser: untouched


async def test_discovery_names_the_endpoint_and_back_channel_support(h):
    meta = (await h.client.get("/.well-known/openid-configuration")).json()
    assert meta["end_session_endpoint"] == ISSUER + "/oauth2/logout"
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
