"""Sign-in, refresh rotation with reuse detection, sign-out, and the access tokens themselves."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from v1_support import PASSWORD, assert_problem, create_user, login, unverified_claims

from sproutgate.infra.keys import load_signing_keys
from support.harness import bearer, signup

SESSIONS = "/api/v1/auth/sessions"
REFRESH = "/api/v1/auth/sessions/refresh"
ME = "/api/v1/users/me"


async def _me(h, token):
    return await h.client.get(ME, headers=bearer(token))


async def test_sign_in_returns_a_session(harness):
    user = await create_user(harness, "signin@example.com")
    r = await harness.client.post(SESSIONS, json={"email": "signin@example.com", "password": PASSWORD})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type", "user"}
    assert body["user"] == {"id": user.id, "email": "signin@example.com"}
    assert (body["expires_in"], body["token_type"]) == (3600, "bearer")
    assert (await _me(harness, body["access_token"])).status_code == 200


async def test_sign_in_email_is_case_insensitive(harness):
    await create_user(harness, "case@example.com")
    assert (await login(harness, "CASE@Example.com"))["user"]["email"] == "case@example.com"


async def test_wrong_password_and_unknown_email_answer_alike(harness):
    await create_user(harness, "real@example.com")
    wrong = await harness.client.post(SESSIONS, json={"email": "real@example.com", "password": "Wrong#Pass1"})
    ghost = await harness.client.post(
        SESSIONS, json={"email": "ghost@example.com", "password": "Wrong#Pass1"}
    )
    assert_problem(wrong, 401, "invalid_credentials")
    assert_problem(ghost, 401, "invalid_credentials")
    # Alike but for each request's own id.
    wrong_body, ghost_body = wrong.json(), ghost.json()
    assert wrong_body.pop("request_id") == wrong.headers["x-request-id"]
    assert ghost_body.pop("request_id") == ghost.headers["x-request-id"]
    assert wrong_body == ghost_body
    assert wrong.headers["content-type"] == ghost.headers["content-type"]


@pytest.mark.engine_independent
async def test_sign_in_missing_fields_is_422(client):
    r = await client.post(SESSIONS, json={"email": "x@example.com"})
    assert_problem(r, 422)
    assert {e["field"] for e in r.json()["errors"]} == {"password"}


async def test_disabled_account_is_refused_after_a_correct_password(harness):
    from sproutgate.domain.admin.service import UserFields

    user = await create_user(harness, "off@example.com")
    await harness.services.admin.update_user(user.account, UserFields(disabled=True), actor="test")
    r = await harness.client.post(SESSIONS, json={"email": "off@example.com", "password": PASSWORD})
    assert_problem(r, 403, "account_disabled")
    r = await harness.client.post(SESSIONS, json={"email": "off@example.com", "password": "Wrong#Pass1"})
    assert_problem(r, 401, "invalid_credentials")


async def test_refresh_rotates_the_pair(harness):
    session = await signup(harness, "rotate@example.com")
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    fresh = r.json()
    assert set(fresh) == {"access_token", "refresh_token", "expires_in", "token_type", "user"}
    assert fresh["refresh_token"] != session["refresh_token"]
    assert fresh["user"] == session["user"]
    assert (
        unverified_claims(fresh["access_token"])["sid"] == unverified_claims(session["access_token"])["sid"]
    )
    assert (await _me(harness, fresh["access_token"])).status_code == 200
    r = await harness.client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200


async def test_reused_refresh_token_revokes_session(harness):
    session = await signup(harness, "reuse@example.com")
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    fresh = r.json()
    harness.clock.advance(11)  # past the 10 s grace window
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    # the whole session is gone: the newest pair and the old access token stop working
    assert_problem(await _me(harness, fresh["access_token"]), 401, "not_authenticated")
    assert_problem(await _me(harness, session["access_token"]), 401)
    r = await harness.client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")


async def test_reuse_does_not_touch_other_sessions(harness):
    await create_user(harness, "multi@example.com")
    one = await login(harness, "multi@example.com")
    two = await login(harness, "multi@example.com")
    await harness.client.post(REFRESH, json={"refresh_token": one["refresh_token"]})
    harness.clock.advance(30)
    r = await harness.client.post(REFRESH, json={"refresh_token": one["refresh_token"]})
    assert r.status_code == 401
    assert (await _me(harness, two["access_token"])).status_code == 200
    assert (
        await harness.client.post(REFRESH, json={"refresh_token": two["refresh_token"]})
    ).status_code == 200


async def test_reuse_within_grace_window_gives_a_working_pair_for_the_same_session(harness):
    session = await signup(harness, "tabs@example.com")
    first = (await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})).json()
    harness.clock.advance(5)
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    # One chain: a use inside the grace window answers the same successor (issue 11 item 5).
    assert second["refresh_token"] == first["refresh_token"]
    sid = unverified_claims(session["access_token"])["sid"]
    assert unverified_claims(first["access_token"])["sid"] == sid
    assert unverified_claims(second["access_token"])["sid"] == sid
    # both tabs keep working
    assert (await _me(harness, first["access_token"])).status_code == 200
    assert (await _me(harness, second["access_token"])).status_code == 200
    for pair in (first, second):
        r = await harness.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text


async def test_parallel_refreshes_with_one_token_never_fork_the_session(harness):
    """Issue 11 item 5: six parallel uses of one refresh token inside the grace window used to
    yield six independent refresh tokens, each usable. Now they all get the same successor."""
    session = await signup(harness, "fork@example.com")
    answers = await asyncio.gather(
        *(harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]}) for _ in range(6))
    )
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    successors = {r.json()["refresh_token"] for r in answers}
    assert len(successors) == 1
    (successor,) = successors
    assert successor != session["refresh_token"]
    nxt = await harness.client.post(REFRESH, json={"refresh_token": successor})
    assert nxt.status_code == 200
    # Past the window, the first token is a reuse: the one chain (the whole session) ends.
    harness.clock.advance(11)
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    r = await harness.client.post(REFRESH, json={"refresh_token": nxt.json()["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")


async def test_grace_window_is_configurable(make_harness, make_settings):
    h = await make_harness(make_settings(refresh_grace_seconds=0))
    session = await signup(h, "nograce@example.com")
    await h.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    h.clock.advance(1)
    r = await h.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")


async def test_unknown_refresh_token_is_401(client):
    r = await client.post(REFRESH, json={"refresh_token": "not-a-real-token"})
    assert_problem(r, 401, "invalid_refresh_token")


@pytest.mark.engine_independent
async def test_refresh_missing_token_is_422(client):
    r = await client.post(REFRESH, json={})
    assert_problem(r, 422)


async def test_sign_out_ends_the_session_at_once(harness):
    session = await signup(harness, "bye@example.com")
    r = await harness.client.request("DELETE", SESSIONS, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(await _me(harness, session["access_token"]), 401, "not_authenticated")
    r = await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert_problem(r, 401, "invalid_refresh_token")
    # signing out again, or with a token never issued, is still 204
    r = await harness.client.request("DELETE", SESSIONS, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 204
    r = await harness.client.request("DELETE", SESSIONS, json={"refresh_token": "never-issued"})
    assert r.status_code == 204


async def test_sign_out_with_a_rotated_token_still_ends_the_session(harness):
    session = await signup(harness, "rotated-out@example.com")
    fresh = (await harness.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})).json()
    r = await harness.client.request("DELETE", SESSIONS, json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 204
    assert (await _me(harness, fresh["access_token"])).status_code == 401


async def test_sign_out_leaves_other_sessions_alone(harness):
    await create_user(harness, "two@example.com")
    one = await login(harness, "two@example.com")
    two = await login(harness, "two@example.com")
    await harness.client.request("DELETE", SESSIONS, json={"refresh_token": one["refresh_token"]})
    assert (await _me(harness, one["access_token"])).status_code == 401
    assert (await _me(harness, two["access_token"])).status_code == 200


@pytest.mark.engine_independent
async def test_sign_out_without_body_is_422(client):
    r = await client.request("DELETE", SESSIONS)
    assert_problem(r, 422)


# -- the tokens ----------------------------------------------------------------------------------


async def test_jwks_verifies_an_issued_token(harness):
    session = await signup(harness, "jwks@example.com")
    r = await harness.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert keys and all("d" not in k for k in keys)  # public halves only
    header = jwt.get_unverified_header(session["access_token"])
    assert header["alg"] in ("ES256", "EdDSA")
    [jwk] = [k for k in keys if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(
        session["access_token"],
        key.key,
        algorithms=[header["alg"]],
        issuer="sproutgate",
        audience="sproutgate:api",
    )
    assert claims["sub"] == session["user"]["id"]
    assert claims["sid"]
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["exp"] - (time.time() + 3600)) < 60


def _private_key(h):
    kid, key = load_signing_keys(h.services.settings.data_dir)[-1]
    return kid, key


def _claims(session, **changes):
    c = unverified_claims(session["access_token"])
    c.update(changes)
    return {k: v for k, v in c.items() if v is not None}


async def test_token_signed_with_our_key_is_accepted(harness):
    """Control for the forgery tests below: a re-signed copy of a real token works."""
    session = await signup(harness, "control@example.com")
    kid, key = _private_key(harness)
    token = jwt.encode(_claims(session), key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    assert (await _me(harness, token)).status_code == 200


async def test_token_with_alg_none_is_refused(harness):
    session = await signup(harness, "none@example.com")
    kid, _ = _private_key(harness)
    token = jwt.encode(_claims(session), None, algorithm="none", headers={"kid": kid, "typ": "at+jwt"})
    assert_problem(await _me(harness, token), 401, "not_authenticated")
    # and a hand-made one with an empty signature
    head, body, _ = session["access_token"].split(".")
    import base64
    import json

    none_head = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode()).rstrip(b"=").decode()
    )
    assert (await _me(harness, f"{none_head}.{body}.")).status_code == 401


async def test_token_signed_hs256_with_the_public_key_is_refused(harness):
    session = await signup(harness, "hs256@example.com")
    kid, key = _private_key(harness)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64
    import hashlib
    import hmac as hm
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        + "."
        + b64(json.dumps(_claims(session)).encode())
    )
    sig = hm.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert_problem(await _me(harness, f"{signing_input}.{b64(sig)}"), 401)
    token = jwt.encode(
        _claims(session),
        "a-shared-secret-of-32-bytes-or-more!",
        algorithm="HS256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    assert_problem(await _me(harness, token), 401)


async def test_token_from_another_issuer_is_refused(harness):
    session = await signup(harness, "iss@example.com")
    kid, key = _private_key(harness)
    token = jwt.encode(
        _claims(session, iss="someone-else"), key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert_problem(await _me(harness, token), 401)
    token = jwt.encode(
        _claims(session, iss=None), key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert_problem(await _me(harness, token), 401)


async def test_expired_token_is_refused(harness):
    session = await signup(harness, "exp@example.com")
    kid, key = _private_key(harness)
    now = int(time.time())
    token = jwt.encode(
        _claims(session, iat=now - 7200, exp=now - 5),
        key,
        algorithm="ES256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    assert_problem(await _me(harness, token), 401)


@pytest.mark.engine_independent
@pytest.mark.parametrize("drop", ["sid", "sub", "exp"])
async def test_token_missing_a_claim_is_refused(harness, drop):
    session = await signup(harness, f"no-{drop}@example.com")
    kid, key = _private_key(harness)
    claims = _claims(session)
    del claims[drop]
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    assert_problem(await _me(harness, token), 401)


async def test_token_signed_by_a_foreign_key_is_refused(harness):
    from cryptography.hazmat.primitives.asymmetric import ec

    session = await signup(harness, "foreign@example.com")
    kid, _ = _private_key(harness)
    token = jwt.encode(
        _claims(session),
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": kid, "typ": "at+jwt"},
    )
    assert_problem(await _me(harness, token), 401)


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Token abc"],
)
async def test_missing_or_garbled_authorization_is_401(client, header):
    r = await client.get(ME, headers={"Authorization": header} if header is not None else {})
    assert_problem(r, 401, "not_authenticated")
    assert r.headers["www-authenticate"].lower().startswith("bearer")


async def test_token_of_another_session_of_a_different_user_cannot_be_spliced(harness):
    """A token whose sub and sid belong to different users is refused."""
    a = await signup(harness, "alice@example.com", username="alice")
    b = await signup(harness, "bob@example.com", username="bobby")
    kid, key = _private_key(harness)
    claims = _claims(a, sid=unverified_claims(b["access_token"])["sid"])
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    assert_problem(await _me(harness, token), 401)


@pytest.mark.engine_independent
def test_grace_window_cannot_exceed_ten_seconds(make_settings):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_settings(refresh_grace_seconds=30)
