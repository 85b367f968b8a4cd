"""Behaviour that differs between database engines unless the code takes care: search, time zones,
column lengths and races between concurrent requests (PostgreSQL runs them truly in parallel,
SQLite queues writers). Every test here runs on both engines."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import func, select

from sproutgate.storage.models import AuthSession, PendingSignup, User, UserEmail, VerificationCode
from support.harness import bearer, signup

pytestmark = pytest.mark.both_engines

PASSWORD = "Sprout#2026pw"


@pytest.fixture
async def h(make_harness, make_settings):
    # Rate limits are not what these tests are about; one client creates many users.
    return await make_harness(make_settings(rate_limits_enabled=False))


async def _count(h, model, *where) -> int:
    async with h.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def _search(h, token: str, query: str) -> list[str]:
    r = await h.client.post("/api/v1/users/search", json={"query": query}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return [u["username"] for u in r.json()]


async def test_search_ranks_exact_prefix_substring_then_similar(h):
    names = ["sprout", "sproutling", "greensprout", "sprot", "zzzz"]
    token = ""
    for i, name in enumerate(names):
        token = (await signup(h, f"s{i}@example.com", username=name))["access_token"]
    assert await _search(h, token, "sprout") == ["sprout", "sproutling", "greensprout", "sprot"]
    # Fewer than 20 substring hits: similar names (shared trigrams) follow, most similar first.
    assert await _search(h, token, "SPROUTL") == ["sproutling", "sprout", "sprot", "greensprout"]
    assert await _search(h, token, "sp") == ["sprot", "sprout", "sproutling", "greensprout"]


async def test_search_finds_long_names_despite_a_typo(h):
    token = ""
    for i, name in enumerate(["jonathan", "jonas", "nathaniel", "marathon", "zzzzzz"]):
        token = (await signup(h, f"t{i}@example.com", username=name))["access_token"]
    # No name contains "jonathon": the similar ones follow, most similar first; "nathaniel"
    # shares two trigrams of eleven (0.12), under the 0.2 threshold.
    assert await _search(h, token, "jonathon") == ["jonathan", "jonas", "marathon"]
    assert await _search(h, token, "Jonathan Smith") == ["jonathan", "jonas"]


async def test_search_treats_like_wildcards_literally(h):
    token = ""
    for i, name in enumerate(["a_b_c", "axbxc", "100%pure", "1000pure"]):
        token = (await signup(h, f"w{i}@example.com", username=name))["access_token"]
    assert await _search(h, token, "a_b") == ["a_b_c"]
    assert await _search(h, token, "a_") == ["a_b_c"]
    assert await _search(h, token, "0%p") == ["100%pure"]


async def test_search_matches_non_ascii_names_case_insensitively(h):
    token = (await signup(h, "u1@example.com", username="Größe Blume"))["access_token"]
    await signup(h, "u2@example.com", username="ÉCOLE")
    assert await _search(h, token, "GRÖSSE") == ["Größe Blume"]
    assert await _search(h, token, "école") == ["ÉCOLE"]


async def test_times_come_back_as_utc_and_expiry_uses_them(h):
    await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "tz@example.com", "password": PASSWORD, "username": "tzz"},
    )
    async with h.services.db.read() as s:
        code = (await s.execute(select(VerificationCode))).scalar_one()
    assert code.expires_at.tzinfo is not None and code.expires_at.utcoffset().total_seconds() == 0
    assert 590 <= (code.expires_at - datetime.now(code.expires_at.tzinfo)).total_seconds() <= 601
    h.clock.advance(h.services.settings.code_ttl_seconds + 1)
    r = await h.client.post(
        "/api/v1/auth/verifications/verify",
        json={"email": "tz@example.com", "token": await h.last_code("tz@example.com")},
    )
    assert r.status_code == 401


async def test_longest_allowed_values_fit_every_column(h):
    # NFKC can expand a character (U+FDFA becomes 18 characters) and casefold ß into "ss".
    username = "\ufdfa" * 30
    session = await signup(h, "long@example.com", username=username)
    r = await h.client.patch(
        "/api/v1/users/me",
        json={"username": "ß" * 30, "bio": "b" * 200, "avatar_url": "https://x.test/" + "a" * 2030},
        headers={**bearer(session["access_token"]), "User-Agent": "u" * 4000},
    )
    assert r.status_code == 200, r.text
    local = "l" * 64
    email = f"{local}@{'d' * 63}.{'e' * 63}.{'f' * 63}.example.com"
    r = await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "x" * 30}
    )
    assert r.status_code in (202, 422), r.text


async def test_concurrent_signups_for_one_address_leave_one_pending_signup(h):
    body = {"email": "race@example.com", "password": PASSWORD, "username": "racer"}
    answers = await asyncio.gather(
        *(h.new_client().post("/api/v1/auth/verifications", json=body) for _ in range(8))
    )
    assert sorted(r.status_code for r in answers) == [202] * 8, [r.text for r in answers]
    assert await _count(h, PendingSignup) == 1
    assert await _count(h, VerificationCode) == 1
    code = await h.last_code("race@example.com")
    r = await h.client.post(
        "/api/v1/auth/verifications/verify", json={"email": "race@example.com", "token": code}
    )
    assert r.status_code == 200, r.text


async def test_one_code_verified_concurrently_creates_one_user(h):
    await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "twice@example.com", "password": PASSWORD, "username": "twice"},
    )
    code = await h.last_code("twice@example.com")
    body = {"email": "twice@example.com", "token": code}
    answers = await asyncio.gather(
        *(h.new_client().post("/api/v1/auth/verifications/verify", json=body) for _ in range(6))
    )
    assert sorted(r.status_code for r in answers) == [200] + [401] * 5, [r.text for r in answers]
    assert await _count(h, User) == 1
    assert await _count(h, UserEmail) == 1
    assert await _count(h, AuthSession) == 1


async def test_one_reset_code_confirmed_concurrently_works_once(h):
    await signup(h, "reset@example.com", username="resetter")
    r = await h.client.post("/api/v1/auth/password-reset", json={"email": "reset@example.com"})
    assert r.status_code == 204
    code = await h.last_code("reset@example.com")
    answers = await asyncio.gather(
        *(
            h.new_client().post(
                "/api/v1/auth/password-reset/confirm",
                json={"email": "reset@example.com", "token": code, "new_password": f"Fresh#2026pw{i}"},
            )
            for i in range(6)
        )
    )
    assert sorted(r.status_code for r in answers) == [204] + [401] * 5, [r.text for r in answers]


async def test_same_account_name_claimed_concurrently_gives_one_user(h):
    async def claim(i: int):
        c = h.new_client()
        r = await c.post(
            "/api/auth/register",
            json={
                "account": "samename",
                "email": f"same{i}@example.com",
                "password": PASSWORD,
                "username": "same",
            },
        )
        if r.status_code != 200:
            return r
        code = await h.last_code(f"same{i}@example.com")
        return await c.post("/api/auth/verify-email", json={"account": "samename", "code": code})

    # Registration or verification refuses the second claim; never both, never a 5xx.
    answers = await asyncio.gather(*(claim(i) for i in range(2)))
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and codes[1] in (401, 409), [r.text for r in answers]
    assert await _count(h, User, User.account_lower == "samename") == 1


async def test_sign_ups_deriving_the_same_account_name_concurrently_both_succeed(h):
    """alice@… on several domains: each gets an account name, distinct, and no 409."""
    emails = [f"alice@d{i}.example" for i in range(4)]
    for email in emails:
        r = await h.client.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "alice"}
        )
        assert r.status_code == 202, r.text
    bodies = [{"email": email, "token": await h.last_code(email)} for email in emails]
    answers = await asyncio.gather(
        *(h.new_client().post("/api/v1/auth/verifications/verify", json=body) for body in bodies)
    )
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    async with h.services.db.read() as s:
        accounts = sorted((await s.execute(select(User.account_lower))).scalars())
    assert len(set(accounts)) == 4 and "alice" in accounts, accounts
    assert all(a.startswith("alice") for a in accounts), accounts


async def test_concurrent_refreshes_of_one_token_stay_within_grace(h):
    session = await signup(h, "tabs@example.com", username="tabs")
    body = {"refresh_token": session["refresh_token"]}
    answers = await asyncio.gather(
        *(h.new_client().post("/api/v1/auth/sessions/refresh", json=body) for _ in range(5))
    )
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    r = await h.client.get("/api/v1/users/me", headers=bearer(answers[-1].json()["access_token"]))
    assert r.status_code == 200


async def test_search_uses_the_trigram_index_on_postgres(h):
    if h.services.db.dialect != "postgresql":
        pytest.skip("PostgreSQL only; tests/v1/test_v1_users.py checks SQLite's FTS5 index")
    from sqlalchemy import text

    async with h.services.db.read() as s:
        await s.execute(text("SET LOCAL enable_seqscan = off"))
        plans = {}
        for name, where in {
            "substring": "username_lower LIKE '%prout%'",
            "similar": "username_lower % 'sprot'",
            "prefix": "username_lower LIKE 'spr%'",
        }.items():
            rows = await s.execute(text(f"EXPLAIN SELECT id FROM users WHERE {where}"))
            plans[name] = " ".join(r[0] for r in rows)
    assert "ix_users_username_trgm" in plans["substring"], plans
    assert "ix_users_username_trgm" in plans["similar"], plans
    assert "ix_users_username_prefix" in plans["prefix"] or "trgm" in plans["prefix"], plans


async def test_a_nul_character_is_never_taken_for_an_outage(h):
    token = (await signup(h, "nul@example.com", username="nul"))["access_token"]
    r = await h.client.post("/api/v1/users/search", json={"query": "n\u0000l"}, headers=bearer(token))
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "contains_nul", r.text


async def test_nul_characters_are_refused_alike_on_both_faces_and_engines(h):
    """PostgreSQL cannot store U+0000 and SQLite can: both answer 422 naming the field, in the
    caller's language, and nothing stored changes."""
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "nul@example.com", "password": PASSWORD, "username": "nul\x00name"},
        headers={"Accept-Language": "en"},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["field"]: e["code"] for e in r.json()["errors"]} == {"username": "contains_nul"}
    assert "NUL" in r.json()["detail"]
    assert await _count(h, PendingSignup) == 0

    session = await signup(h, "clean@example.com", username="cleanname")
    auth = bearer(session["access_token"])
    r = await h.client.patch(
        "/api/v1/users/me", json={"bio": "a\x00b", "username": "fine name"}, headers=auth
    )
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"bio"}
    r = await h.client.put(
        "/api/auth/profile", json={"bio": "a\x00b"}, headers={**auth, "Accept-Language": "zh-CN"}
    )
    assert r.status_code == 422 and {e["field"]: e["code"] for e in r.json()["errors"]} == {
        "bio": "contains_nul"
    }
    assert "NUL" in r.json()["detail"] and "不能包含" in r.json()["detail"]
    me = (await h.client.get("/api/v1/users/me", headers=auth)).json()
    assert me["username"] == "cleanname" and me["bio"] is None
    # Passwords too, on sign-in: the same 422 rather than a hash of something no form can type.
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": "clean@example.com", "password": "x\x00y"}
    )
    assert r.status_code == 422
