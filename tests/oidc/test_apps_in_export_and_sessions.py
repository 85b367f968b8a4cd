"""What apps hold, seen from the person's side: the export (GET /api/v1/users/me/export and the
account page's download) lists the connected apps (consents) and the apps' grants (sessions of
kind ``oidc``) without a token or hash; the person's session lists on every face (v1, gate,
account page, console) leave those grants out (they are connected apps, not sign-ins); and
deleting the account removes the consents, grants, unused codes and SSO records with it."""

from __future__ import annotations

import json
import re

import pytest
from logout_support import page_csrf, register_app, sign_in_to_app
from oidc_support import CALLBACK, PASSWORD, make_person, pkce_pair, query_of
from sqlalchemy import func, select

from sproutgate.storage.models import (
    AuthorizationCode,
    AuthSession,
    OAuthConsent,
    OidcSessionClient,
    RefreshToken,
)
from support.harness import AppHarness, bearer

pytestmark = pytest.mark.both_engines
ADMIN = {"X-Admin-Token": "apps-export-admin-token"}


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(make_settings(admin_token=ADMIN["X-Admin-Token"]))


async def _grants(h: AppHarness, user_id: str) -> list[AuthSession]:
    async with h.services.db.read() as s:
        stmt = select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.kind == "oidc")
        return list((await s.execute(stmt)).scalars())


async def _connected(h: AppHarness):  # type: ignore[no-untyped-def]
    """A person signed in to a third-party app (consent, offline grant) and a first-party one,
    plus an authorization code that was never traded; (person, browser, ids, tokens)."""
    notes, notes_secret = await register_app(h, first_party=False, name="Orchard Notes")
    board, board_secret = await register_app(h, first_party=True, name="Family Board")
    person = await make_person(h)
    browser = h.new_client(**{"Accept-Language": "en"})
    notes_tokens = await sign_in_to_app(
        h, browser, notes, notes_secret, person, scope="openid profile offline_access"
    )
    board_tokens = await sign_in_to_app(h, browser, board, board_secret, person)
    _, challenge = pkce_pair()
    r = await browser.get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": board,
            "redirect_uri": CALLBACK,
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert "code" in query_of(r.headers["location"]), r.headers  # single sign-on: a code at once
    return person, browser, (notes, board), (notes_tokens, board_tokens)


async def test_the_export_holds_connected_apps_and_grants_but_no_token(h):
    person, browser, (notes, board), tokens = await _connected(h)
    r = await h.client.post("/api/v1/auth/sessions", json={"email": person["email"], "password": PASSWORD})
    access = r.json()["access_token"]
    r = await h.client.get("/api/v1/users/me/export", headers=bearer(access))
    assert r.status_code == 200, r.text
    export = r.json()

    (consent,) = export["connected_apps"]  # the first-party app needed no consent
    assert consent["client_id"] == notes and consent["client_name"] == "Orchard Notes"
    assert set(consent["scopes"].split()) == {"openid", "profile", "offline_access"}
    assert consent["granted_at"].endswith("Z") or "+" in consent["granted_at"]

    grants = {g["client_id"]: g for g in export["app_grants"]}
    assert set(grants) == {notes, board}
    assert grants[notes]["client_name"] == "Orchard Notes" and grants[board]["client_name"] == "Family Board"
    assert set(grants[notes]["scope"].split()) == {"openid", "profile", "offline_access"}
    assert set(grants[notes]) == {
        "id",
        "client_id",
        "client_name",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "ended_at",
        "end_reason",
    }
    stored = {g.id for g in await _grants(h, person["id"])}
    assert {g["id"] for g in export["app_grants"]} == stored
    # The person's own sessions are the sign-ins, not the apps' grants.
    assert not stored & {s["id"] for s in export["sessions"]}
    assert {s["kind"] for s in export["sessions"]} <= {"web", "runtime", "gate"}
    assert export["sign_in_devices"] and set(export["sign_in_devices"][0]) == {
        "first_seen_at",
        "last_seen_at",
    }

    # Never a token or a hash of one.
    text = r.text
    for issued in tokens:
        for field in ("access_token", "refresh_token", "id_token"):
            if issued.get(field):
                assert issued[field] not in text
    async with h.services.db.read() as s:
        hashes = list((await s.execute(select(RefreshToken.token_hash))).scalars())
        hashes += list((await s.execute(select(AuthorizationCode.code_hash))).scalars())
    assert hashes and not any(x in text for x in hashes)

    # The account page's download is the same document.
    r = await browser.post("/account/export", data={"csrf_token": await page_csrf(browser)})
    assert r.status_code == 200, r.text
    page_export = json.loads(r.content)
    assert page_export["connected_apps"] == export["connected_apps"]
    assert {g["id"] for g in page_export["app_grants"]} == stored
    await browser.aclose()


async def test_session_lists_leave_the_apps_grants_out_on_every_face(h):
    person, browser, _, _ = await _connected(h)
    grant_ids = {g.id for g in await _grants(h, person["id"])}
    assert len(grant_ids) == 2

    r = await h.client.post("/api/v1/auth/sessions", json={"email": person["email"], "password": PASSWORD})
    v1_token = r.json()["access_token"]
    r = await h.client.post("/api/auth/login", json={"account": person["account"], "password": PASSWORD})
    gate_token = r.json()["token"]
    v1 = await h.client.get("/api/v1/users/me/sessions", headers=bearer(v1_token))
    assert v1.status_code == 200, v1.text
    v1_ids = {s["id"] for s in v1.json()}
    gate = await h.client.get("/api/auth/sessions", headers=bearer(gate_token))
    assert gate.status_code == 200, gate.text
    gate_ids = {s["id"] for s in gate.json()["sessions"]}
    page_ids = set(re.findall(r'data-session-id="([^"]+)"', (await browser.get("/account")).text))
    console = h.new_client(**{"Accept-Language": "en"})
    form = {"csrf_token": await page_csrf(console, "/admin"), "token": ADMIN["X-Admin-Token"]}
    assert (await console.post("/admin/login", data=form)).status_code in (200, 303)
    page = await console.get(f"/admin/users/{person['account']}")
    assert page.status_code == 200, page.text
    console_ids = set(re.findall(r'data-session-id="([^"]+)"', page.text))
    await console.aclose()

    async with h.services.db.read() as s:
        stmt = select(AuthSession.id, AuthSession.kind).where(AuthSession.user_id == person["id"])
        kinds = dict((await s.execute(stmt)).all())
    own = {sid for sid, kind in kinds.items() if kind != "oidc"}
    assert v1_ids == own and gate_ids == own and page_ids == own and console_ids == own, (
        kinds,
        v1_ids,
        gate_ids,
        page_ids,
        console_ids,
    )
    assert not grant_ids & (v1_ids | gate_ids | page_ids | console_ids)
    await browser.aclose()


async def test_deleting_the_account_removes_what_apps_held(h):
    person, browser, (notes, _), _ = await _connected(h)
    uid = person["id"]
    grant_ids = [g.id for g in await _grants(h, uid)]

    async def counts() -> tuple[int, int, int, int]:
        async with h.services.db.read() as s:
            consents = await s.scalar(select(func.count()).where(OAuthConsent.user_id == uid))
            codes = await s.scalar(select(func.count()).where(AuthorizationCode.user_id == uid))
            sso = await s.scalar(
                select(func.count())
                .select_from(OidcSessionClient)
                .join(AuthSession, AuthSession.id == OidcSessionClient.session_id)
                .where(AuthSession.user_id == uid)
            )
            grants = await s.scalar(select(func.count()).where(AuthSession.id.in_(grant_ids)))
        return consents or 0, codes or 0, sso or 0, grants or 0

    before = await counts()
    assert all(before), before  # each kind of row exists before
    async with h.services.db.read() as s:
        sso_rows_before = await s.scalar(select(func.count()).select_from(OidcSessionClient))
    r = await h.client.delete(f"/api/admin/users/{person['account']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await counts() == (0, 0, 0, 0)
    async with h.services.db.read() as s:
        assert (
            await s.scalar(select(func.count()).select_from(OidcSessionClient)) == sso_rows_before - before[2]
        )
        # The app itself stays registered.
        assert (await h.services.clients.get(notes)).client_id == notes
    await browser.aclose()
