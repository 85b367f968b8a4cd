"""Lasting access is a way into the account, and adding one asks for a recent sign-in (issue 11
item 2's rule, for the OpenID Connect provider): an authorization request that would give an app
a new grant outliving the sign-out (``offline_access``), from a browser signed in longer ago than
``SPROUTGATE_RECENT_AUTH_SECONDS``, shows the sign-in page first, like ``prompt=login`` (OpenID
Connect Core §3.1.2.1); ``prompt=none`` answers ``login_required``. Asking again for what a
confidential app already holds, and single sign-on without ``offline_access``, go straight
through; a public app's tokens go wherever the request was made, so it always asks.

And a client changed from first-party to third-party keeps nothing its users never agreed to:
the grants it got without consent end with the change, its codes not yet redeemed die, and the
next authorization asks for consent. Both engines."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
from typing import Any

import httpx
import pytest
from logout_support import page_csrf, register_app, sign_in_to_app
from oidc_support import (
    CALLBACK,
    auth_time_of,
    exchange_returned,
    make_person,
    pkce_pair,
    query_of,
    register_client,
    sign_in,
)
from typer.testing import CliRunner

from sproutgate.cli import app as cli_app
from support.harness import AppHarness

pytestmark = pytest.mark.both_engines

RECENT = 600  # SPROUTGATE_RECENT_AUTH_SECONDS's default, set explicitly below


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token="oidc-lasting-admin", recent_auth_seconds=RECENT))


def _request(client_id: str, challenge: str, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": scope,
        "state": "st-lasting",
        "nonce": "n-lasting",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def _refresh(h: AppHarness, client_id: str, secret: str, token: str) -> httpx.Response:
    return await h.client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(client_id, secret),
    )


@pytest.mark.parametrize("first_party", [True, False])
async def test_a_new_lasting_grant_from_an_old_sign_in_signs_in_again_first(h, first_party):
    client_id, secret = await register_app(h, first_party=first_party)
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    first = await sign_in_to_app(h, browser, client_id, secret, person)  # openid profile
    assert "refresh_token" not in first or first_party
    h.clock.advance(RECENT + 60)
    verifier, challenge = pkce_pair()
    params = _request(client_id, challenge, "openid profile offline_access")

    # Silent renewal cannot add lasting access.
    r = await browser.get("/oauth2/authorize", params={**params, "prompt": "none"})
    assert r.status_code == 303
    assert query_of(r.headers["location"])["error"] == "login_required", r.headers["location"]
    # The browser's sign-in is asked for again (the form, though signed in), no code.
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?"), r.headers["location"]
    login = r.headers["location"]
    assert "reauth=1" in login
    # Following the link back without signing in gives the same answer.
    back = query_of(login)["next"]
    r = await browser.get(back)
    assert r.headers["location"].startswith("/login?")

    r = await sign_in(browser, login, person["account"])
    assert r.status_code == 303 and r.headers["location"] == back
    r = await browser.get(back)
    if not first_party:  # then consent for the wider scope
        assert r.headers["location"].startswith("/oauth2/consent?"), r.headers["location"]
        page = await browser.get(r.headers["location"])
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        r = await browser.post(
            "/oauth2/consent", data={**{k: html.unescape(v) for k, v in form.items()}, "decision": "allow"}
        )
        r = await browser.get(r.headers["location"])
    assert r.status_code == 303 and "code=" in r.headers["location"], r.headers["location"]
    token = await exchange_returned(h, client_id, secret, r.headers["location"], verifier)
    assert token.status_code == 200, token.text
    assert token.json()["refresh_token"] and "offline_access" in token.json()["scope"]
    assert auth_time_of(h, token.json()) >= auth_time_of(h, first) + RECENT + 60


async def test_lasting_access_right_after_a_sign_in_and_plain_single_sign_on_ask_nothing(h):
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    # The usual first visit: not signed in, signs in, comes back: no second sign-in.
    answer = await sign_in_to_app(h, browser, client_id, secret, person, scope="openid offline_access")
    assert answer["refresh_token"]
    h.clock.advance(RECENT - 30)
    _, challenge = pkce_pair()
    params = _request(client_id, challenge, "openid profile offline_access")
    r = await browser.get("/oauth2/authorize", params=params)  # still recent: straight through
    assert "code=" in r.headers["location"], r.headers["location"]
    # Long after: single sign-on without offline_access is not held back.
    h.clock.advance(3600)
    other, other_secret = await register_app(h)
    _, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(other, challenge, "openid profile email"))
    assert "code=" in r.headers["location"], r.headers["location"]


async def test_renewing_a_lasting_grant_asks_nothing_but_widening_it_does(h):
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    held = await sign_in_to_app(h, browser, client_id, secret, person, scope="openid profile offline_access")
    h.clock.advance(RECENT + 60)
    r = await _refresh(h, client_id, secret, held["refresh_token"])  # the grant in use, not idle
    assert r.status_code == 200, r.text

    # The same or fewer scopes, held already by this confidential app: no new holder, no question.
    for scope in ("openid profile offline_access", "openid offline_access"):
        _, challenge = pkce_pair()
        r = await browser.get(
            "/oauth2/authorize", params=_request(client_id, challenge, scope, prompt="none")
        )
        assert "code=" in r.headers["location"], (scope, r.headers["location"])
    # A wider lasting grant is new access: sign in again.
    _, challenge = pkce_pair()
    params = _request(client_id, challenge, "openid profile email offline_access")
    r = await browser.get("/oauth2/authorize", params=params)
    assert r.headers["location"].startswith("/login?"), r.headers["location"]

    # Once the held grant has ended (the app disconnected), lasting access is new again.
    r = await browser.post(f"/account/apps/{client_id}/revoke", data={"csrf_token": await page_csrf(browser)})
    assert r.status_code == 303
    _, challenge = pkce_pair()
    r = await browser.get(
        "/oauth2/authorize", params=_request(client_id, challenge, "openid offline_access", prompt="none")
    )
    assert query_of(r.headers["location"])["error"] == "login_required"


async def test_a_confidential_apps_held_grant_does_not_excuse_a_code_sent_to_a_loopback_port(h):
    """A confidential client may register a loopback redirect (``http://127.0.0.1/cb``, any
    port): a code sent there lands on whichever machine ran the request, not on the app's
    server, like a public client's. So the owner's lasting grant to the app does not let a copy
    of their session cookie, with the app's secret (a desktop build carries it), get a second
    lasting grant there without signing in; the app's own server callback is still excused."""
    from sproutgate.domain.clients.rules import ClientSpec

    created = await h.services.clients.create(
        ClientSpec(
            name="Desktop and web",
            redirect_uris=(CALLBACK, "http://127.0.0.1/cb"),
            public=False,
            first_party=True,
            scopes=("openid", "profile", "offline_access"),
            grant_types=("authorization_code", "refresh_token"),
        ),
        "test",
    )
    client_id, secret = created.client.client_id, created.client_secret
    assert secret
    person = await make_person(h)
    browser = h.new_client()
    held = await sign_in_to_app(h, browser, client_id, secret, person, scope="openid offline_access")
    h.clock.advance(RECENT + 60)
    assert (await _refresh(h, client_id, secret, held["refresh_token"])).status_code == 200
    for loopback in ("http://127.0.0.1:5555/cb", "http://127.0.0.1/cb"):
        _, challenge = pkce_pair()
        params = _request(client_id, challenge, "openid offline_access", prompt="none", redirect_uri=loopback)
        r = await browser.get("/oauth2/authorize", params=params)
        assert r.headers["location"].startswith(loopback), r.headers["location"]
        assert query_of(r.headers["location"])["error"] == "login_required", r.headers["location"]
    _, challenge = pkce_pair()
    params = _request(client_id, challenge, "openid offline_access", prompt="none")
    r = await browser.get("/oauth2/authorize", params=params)
    assert "code=" in r.headers["location"], r.headers["location"]


async def test_an_idle_lasting_grant_does_not_excuse_a_new_one(make_harness, make_settings):
    idle = 4 * 3600
    h = await make_harness(
        make_settings(
            admin_token="oidc-idle-admin", recent_auth_seconds=RECENT, session_idle_timeout_seconds=idle
        )
    )
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person, scope="openid offline_access")
    # The browser's sign-in is kept alive by visits; the app's grant is never used again.
    for _ in range(5):
        h.clock.advance(3600)
        assert (await browser.get("/account")).status_code == 200
    _, challenge = pkce_pair()
    r = await browser.get(
        "/oauth2/authorize", params=_request(client_id, challenge, "openid offline_access", prompt="none")
    )
    assert query_of(r.headers["location"])["error"] == "login_required", r.headers["location"]


async def test_a_request_edited_to_drop_offline_access_gets_no_lasting_grant(h):
    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person)
    h.clock.advance(RECENT + 60)
    verifier, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid offline_access"))
    assert r.headers["location"].startswith("/login?")
    # Without offline_access the request is single sign-on, and its grant ends with the sign-in.
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid"))
    token = await exchange_returned(h, client_id, secret, r.headers["location"], verifier)
    assert token.status_code == 200 and token.json()["scope"] == "openid"
    r = await browser.post("/logout", data={"csrf_token": await page_csrf(browser)})
    refreshed = await _refresh(h, client_id, secret, token.json()["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def _make_third_party(h: AppHarness, client_id: str, first_party: bool = False) -> None:
    r = await h.client.put(
        f"/api/admin/clients/{client_id}",
        json={"firstParty": first_party},
        headers={"X-Admin-Token": "oidc-lasting-admin"},
    )
    assert r.status_code == 200 and r.json()["client"]["firstParty"] is first_party, r.text


async def test_a_client_made_third_party_keeps_nothing_made_without_consent(h):
    client_id, secret = await register_app(h, name="Family Photos")
    lasting, session_bound, pending = [await make_person(h) for _ in range(3)]
    browser = h.new_client(**{"Accept-Language": "en"})
    held = await sign_in_to_app(h, browser, client_id, secret, lasting, scope="openid profile offline_access")
    bound = await sign_in_to_app(h, h.new_client(), client_id, secret, session_bound)
    assert bound["refresh_token"]  # first-party: refresh tokens without offline_access
    # A code issued just before the change, not yet exchanged.
    pending_browser = h.new_client()
    verifier, challenge = pkce_pair()
    r = await pending_browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid"))
    assert r.headers["location"].startswith("/login?")
    r = await sign_in(pending_browser, r.headers["location"], pending["account"])
    r = await pending_browser.get(r.headers["location"])
    code_location = r.headers["location"]
    assert "code=" in code_location
    # Another first-party app's grants are not touched.
    other, other_secret = await register_app(h)
    other_held = await sign_in_to_app(h, browser, other, other_secret, lasting, scope="openid offline_access")

    await _make_third_party(h, client_id)

    for token in (held["refresh_token"], bound["refresh_token"]):
        r = await _refresh(h, client_id, secret, token)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    r = await h.client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {held['access_token']}"})
    assert r.status_code == 401
    r = await exchange_returned(h, client_id, secret, code_location, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert (await _refresh(h, other, other_secret, other_held["refresh_token"])).status_code == 200
    # The app is no longer listed as connected, and the next authorization asks for consent.
    page = await browser.get("/account")
    assert f'data-client-id="{client_id}"' not in page.text and f'data-client-id="{other}"' in page.text
    _, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid", prompt="none"))
    assert query_of(r.headers["location"])["error"] == "consent_required", r.headers["location"]
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid profile"))
    assert r.headers["location"].startswith("/oauth2/consent?"), r.headers["location"]


async def test_grants_the_person_consented_to_stay_when_the_client_turns_third_party_again(h):
    client_id, secret = await register_app(h, first_party=False)
    person = await make_person(h)
    browser = h.new_client()
    consented = await sign_in_to_app(
        h, browser, client_id, secret, person, scope="openid profile offline_access"
    )
    await _make_third_party(h, client_id, first_party=True)
    # While first-party, a wider grant than the consent (email) is made without asking.
    wider = await sign_in_to_app(h, browser, client_id, secret, person, scope="openid email offline_access")
    await _make_third_party(h, client_id)
    r = await _refresh(h, client_id, secret, consented["refresh_token"])
    assert r.status_code == 200, r.text
    token = r.json()["refresh_token"]
    r = await _refresh(h, client_id, secret, wider["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # A change that leaves it third-party (its name) ends nothing more.
    r = await h.client.put(
        f"/api/admin/clients/{client_id}",
        json={"name": "Renamed"},
        headers={"X-Admin-Token": "oidc-lasting-admin"},
    )
    assert r.status_code == 200
    assert (await _refresh(h, client_id, secret, token)).status_code == 200


async def test_the_command_line_says_how_many_grants_a_change_to_third_party_ended(h):
    """``sproutgate clients update ID --third-party`` prints ``grants_ended`` in its JSON and
    says it on stderr (the log alone told the operator before)."""
    client_id, secret = await register_app(h, name="Family Notes")
    consented, _ = await register_app(h, first_party=False)
    for person in [await make_person(h) for _ in range(2)]:
        await sign_in_to_app(h, h.new_client(), client_id, secret, person)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    env.update(
        SPROUTGATE_DATA_DIR=str(h.services.settings.data_dir),
        SPROUTGATE_DATABASE_URL=h.services.settings.database_url,
    )

    async def update(*args: str) -> tuple[dict[str, Any], str]:
        r = await asyncio.to_thread(CliRunner().invoke, cli_app, ["clients", "update", *args], env=env)
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout), r.stderr

    answer, said = await update(client_id, "--third-party")
    assert (answer["first_party"], answer["grants_ended"]) == (False, 2)
    assert "2 grants made without consent ended: the client is no longer first-party" in said
    # A change that ends nothing says 0 and nothing on stderr.
    answer, said = await update(client_id, "--name", "Family Notes 2")
    assert (answer["name"], answer["grants_ended"]) == ("Family Notes 2", 0) and said == ""
    answer, said = await update(consented, "--third-party")
    assert answer["grants_ended"] == 0 and said == ""


async def test_the_admin_api_says_how_many_grants_a_change_to_third_party_ended(h):
    """``PUT /api/admin/clients/{id}`` answers ``grantsEnded`` next to ``client`` (a new field;
    the CLI's ``grants_ended``), 0 for a change that ends nothing."""
    client_id, secret = await register_app(h, name="Family Calendar")
    for person in [await make_person(h) for _ in range(2)]:
        await sign_in_to_app(h, h.new_client(), client_id, secret, person)
    admin = {"X-Admin-Token": "oidc-lasting-admin"}
    r = await h.client.put(f"/api/admin/clients/{client_id}", json={"firstParty": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"client", "grantsEnded"}
    assert (r.json()["client"]["firstParty"], r.json()["grantsEnded"]) == (False, 2)
    r = await h.client.put(f"/api/admin/clients/{client_id}", json={"name": "Calendar"}, headers=admin)
    assert (r.status_code, r.json()["client"]["name"], r.json()["grantsEnded"]) == (200, "Calendar", 0)
    # Bad input is still the problem it was, and ends nothing.
    r = await h.client.put(f"/api/admin/clients/{client_id}", json={"firstParty": "yes"}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    r = await h.client.put("/api/admin/clients/no-such-app", json={"firstParty": False}, headers=admin)
    assert r.status_code == 404 and "grantsEnded" not in r.text


async def _console(h: AppHarness, lang: str) -> httpx.AsyncClient:
    admin = h.new_client(**{"Accept-Language": lang})
    csrf = await page_csrf(admin, "/admin")
    r = await admin.post("/admin/login", data={"csrf_token": csrf, "token": "oidc-lasting-admin"})
    assert r.status_code == 303, r.text
    return admin


def _notice(page: str) -> str:
    found = re.search(r'<div class="notice" role="status">([^<]*)</div>', page)
    assert found, page[:800]
    return html.unescape(found.group(1))


def _form_of(csrf: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf_token": csrf,
        "name": "Family Diary",
        "redirect_uris": CALLBACK,
        "post_logout_redirect_uris": "",
        "backchannel_logout_uri": "",
        "scopes": ["openid", "profile", "email", "offline_access", "sproutgate"],
        "grant_types": ["authorization_code", "refresh_token"],
        **changes,
    }


@pytest.mark.parametrize(
    ("lang", "ended", "saved"),
    [
        ("en", "the grants it held without consent ended (2)", "The app was saved."),
        ("zh-CN", "未经用户同意获得的授权已失效(2 项)", "应用已保存。"),
    ],
)
async def test_the_console_says_how_many_grants_a_change_to_third_party_ended(h, lang, ended, saved):
    client_id, secret = await register_app(h, name="Family Diary")
    for person in [await make_person(h) for _ in range(2)]:
        await sign_in_to_app(h, h.new_client(), client_id, secret, person)
    admin = await _console(h, lang)
    csrf = await page_csrf(admin, f"/admin/clients/{client_id}")
    # The form without "first_party" checked: the app turns third-party.
    r = await admin.post(f"/admin/clients/{client_id}", data=_form_of(csrf))
    assert r.status_code == 303, r.text
    assert (await h.services.clients.get(client_id)).first_party is False
    page = await admin.get(r.headers["location"])
    assert page.status_code == 200 and ended in _notice(page.text)
    # Saving again ends nothing: the plain notice, without a count.
    r = await admin.post(f"/admin/clients/{client_id}", data=_form_of(csrf, name="Diary"))
    assert r.status_code == 303 and "count=" not in r.headers["location"]
    assert _notice((await admin.get(r.headers["location"])).text) == saved
    # A count in the address that is not a number is not shown.
    page = await admin.get("/admin/clients?notice=client_saved_grants_ended&count=<b>9</b>")
    assert "<b>" not in page.text and "9" not in _notice(page.text)


async def test_a_code_issued_as_the_client_turned_third_party_gives_nothing(h):
    """The authorization endpoint read the client as first-party just before the change
    committed, and issued its code just after: the exchange finds no consent."""
    from sqlalchemy import select

    from sproutgate.domain.oidc.rules import check_authorization_params
    from sproutgate.storage.models import AuthSession

    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    await sign_in_to_app(h, browser, client_id, secret, person)
    stale = await h.services.clients.get(client_id)
    await _make_third_party(h, client_id)
    async with h.services.db.read() as s:
        sso = (
            await s.execute(
                select(AuthSession.id).where(AuthSession.user_id == person["id"], AuthSession.kind == "web")
            )
        ).scalar_one()
    verifier, challenge = pkce_pair()
    params = _request(client_id, challenge, "openid profile")
    decision = await h.services.oidc.decide(
        stale, check_authorization_params(params, stale, CALLBACK), params, sso
    )
    r = await exchange_returned(h, client_id, secret, decision.redirect_to, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_a_code_exchanged_as_the_client_turned_third_party_gives_nothing(h):
    """The other side of that instant: the token endpoint authenticated the client (read as
    first-party) just before the change committed, and redeemed the code just after, once the
    change had looked for grants to end. The exchange must judge consent by the registration
    its own transaction sees, not by the client read before it."""
    from sproutgate.domain.oidc.errors import InvalidGrant

    client_id, secret = await register_app(h)
    person = await make_person(h)
    browser = h.new_client()
    verifier, challenge = pkce_pair()
    r = await browser.get("/oauth2/authorize", params=_request(client_id, challenge, "openid profile"))
    r = await sign_in(browser, r.headers["location"], person["account"])
    r = await browser.get(r.headers["location"])
    code_location = r.headers["location"]
    assert "code=" in code_location, code_location
    authenticated = await h.services.clients.authenticate(client_id, secret)  # token(), step one
    assert authenticated.first_party
    await _make_third_party(h, client_id)
    form = {
        "grant_type": "authorization_code",
        "code": query_of(code_location)["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    with pytest.raises(InvalidGrant):
        await h.services.oidc._redeem_code(authenticated, form)  # token(), step two
    # Nothing was opened for the app: the person has no grant of it, and the code is unused.
    assert not [
        a for a in await h.services.oidc.connected_apps(person["id"]) if a.client.client_id == client_id
    ]
    r = await h.client.post("/oauth2/token", data=form, auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_a_public_apps_grant_held_elsewhere_does_not_excuse_a_copied_cookie(h):
    """A native app's tokens land on whichever machine ran the request (a loopback port is
    anyone's): the owner's own lasting grant to it does not let a copy of their session cookie
    get another one without signing in."""
    loopback = "http://127.0.0.1/callback"
    client_id, _ = await register_client(h, name="Pocket Notes", public=True, redirect_uris=(loopback,))
    person = await make_person(h)
    owner = h.new_client()
    r = await sign_in(owner, "/login", person["account"])
    assert r.status_code == 303

    async def ask(browser: httpx.AsyncClient, **extra: str) -> str:
        _, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1:53117/callback",
            "scope": "openid offline_access",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return (await browser.get("/oauth2/authorize", params=params)).headers["location"]

    # The owner's app, just after the sign-in: its lasting grant, and the app keeps using it.
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1:53117/callback",
        "scope": "openid offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    r = await owner.get("/oauth2/authorize", params=params)
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(r.headers["location"])["code"],
            "redirect_uri": params["redirect_uri"],
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert r.status_code == 200 and r.json()["refresh_token"], r.text
    h.clock.advance(RECENT + 60)
    r = await h.client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": r.json()["refresh_token"],
            "client_id": client_id,
        },
    )
    assert r.status_code == 200, r.text

    thief = h.new_client()
    thief.cookies.set("sg_session", owner.cookies["sg_session"])
    assert (await ask(thief)).startswith("/login?")
    assert query_of(await ask(thief, prompt="none"))["error"] == "login_required"
