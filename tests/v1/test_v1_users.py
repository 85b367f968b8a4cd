"""GET/PATCH /users/me, GET /auth/users (administrators) and POST /users/search."""

from __future__ import annotations

import pytest
from v1_support import assert_problem, create_user, error_fields, login

from sproutgate.storage.repositories import UserRepository
from support.harness import bearer, signup

ME = "/api/v1/users/me"
SEARCH = "/api/v1/users/search"
LOOKUP = "/api/v1/auth/users"


@pytest.fixture
async def me(harness):
    session = await signup(harness, "me@example.com", username="myself")
    return bearer(session["access_token"])


async def test_profile_has_exactly_the_documented_fields(harness, me):
    r = await harness.client.get(ME, headers=me)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "username", "avatar_url", "bio"}
    assert body["username"] == "myself"


@pytest.mark.engine_independent
async def test_profile_needs_a_token(client):
    assert_problem(await client.get(ME), 401, "not_authenticated")
    assert_problem(await client.patch(ME, json={"bio": "x"}), 401, "not_authenticated")


async def test_patch_updates_only_the_fields_sent(harness, me):
    r = await harness.client.patch(
        ME, json={"bio": "Gardener.", "avatar_url": "https://cdn.example.com/a.png"}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "Gardener." and r.json()["username"] == "myself"
    r = await harness.client.patch(ME, json={"username": "renamed"}, headers=me)
    assert r.json() == {
        **r.json(),
        "username": "renamed",
        "bio": "Gardener.",
        "avatar_url": "https://cdn.example.com/a.png",
    }
    assert (await harness.client.get(ME, headers=me)).json()["username"] == "renamed"


@pytest.fixture
def authed(harness, me):
    harness.client.headers.update(me)
    return harness


async def test_patch_with_empty_body_changes_nothing(authed):
    before = (await authed.client.get(ME)).json()
    r = await authed.client.patch(ME, json={})
    assert r.status_code == 200 and r.json() == before


async def test_patch_null_clears_optional_fields(authed):
    await authed.client.patch(ME, json={"bio": "text", "avatar_url": "http://example.com/x.png"})
    r = await authed.client.patch(ME, json={"bio": None, "avatar_url": None})
    assert r.status_code == 200
    assert r.json()["bio"] is None and r.json()["avatar_url"] is None


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "ab"}, "username"),
        ({"username": "x" * 31}, "username"),
        ({"username": "   "}, "username"),
        ({"username": None}, "username"),
        ({"username": 12345}, "username"),
        ({"bio": "b" * 201}, "bio"),
        ({"avatar_url": "ftp://example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "not a url"}, "avatar_url"),
        ({"avatar_url": "https://" + "a" * 2100 + ".com"}, "avatar_url"),
    ],
)
async def test_patch_limits(authed, payload, field):
    before = (await authed.client.get(ME)).json()
    r = await authed.client.patch(ME, json=payload)
    assert_problem(r, 422)
    assert error_fields(r) == {field}
    assert (await authed.client.get(ME)).json() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "abc"},
        {"username": "y" * 30},
        {"bio": "b" * 200},
        {"bio": ""},
        {"avatar_url": "http://x.io/a"},
    ],
)
async def test_patch_accepts_values_at_the_limits(authed, payload):
    r = await authed.client.patch(ME, json=payload)
    assert r.status_code == 200, r.text
    key, value = next(iter(payload.items()))
    assert r.json()[key] == value


# -- GET /auth/users ---------------------------------------------------------------------------


async def test_user_lookup_is_for_administrators_only(harness, me):
    r = await harness.client.get(LOOKUP, params={"email": "me@example.com"}, headers=me)
    assert_problem(r, 403, "forbidden")
    r = await harness.client.get(LOOKUP, params={"email": "me@example.com"})
    assert_problem(r, 401)


async def test_admin_looks_up_a_user_by_email(harness):
    await create_user(harness, "boss@example.com", account="boss")
    await harness.services.admin.set_role("boss@example.com", "admin", actor="test")
    target = (await signup(harness, "target@example.com", username="target"))["user"]
    admin = bearer((await login(harness, "boss@example.com"))["access_token"])
    r = await harness.client.get(LOOKUP, params={"email": "Target@Example.com"}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "email", "created_at", "email_confirmed_at"}
    assert body["id"] == target["id"] and body["email"] == "target@example.com"
    from datetime import datetime

    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert datetime.fromisoformat(body["email_confirmed_at"]).tzinfo is not None
    r = await harness.client.get(LOOKUP, params={"email": "nobody@example.com"}, headers=admin)
    assert_problem(r, 404, "user_not_found")


async def test_role_change_applies_to_existing_tokens(harness):
    await create_user(harness, "later@example.com", account="later")
    token = bearer((await login(harness, "later@example.com"))["access_token"])
    r = await harness.client.get(LOOKUP, params={"email": "later@example.com"}, headers=token)
    assert r.status_code == 403
    await harness.services.admin.set_role("later", "admin", actor="test")
    r = await harness.client.get(LOOKUP, params={"email": "later@example.com"}, headers=token)
    assert r.status_code == 200


# -- POST /users/search ------------------------------------------------------------------------


async def _users(h, *names):
    for i, name in enumerate(names):
        await create_user(
            h,
            f"u{i}-{abs(hash(name)) % 10**8}@example.com",
            username=name,
            account=f"acct{i}x{abs(hash(name)) % 10**6}",
        )


async def _search(h, headers, query):
    r = await h.client.post(SEARCH, json={"query": query}, headers=headers)
    assert r.status_code == 200, r.text
    return [u["username"] for u in r.json()]


@pytest.mark.engine_independent
async def test_search_needs_a_token(client):
    assert_problem(await client.post(SEARCH, json={"query": "anna"}), 401)


async def test_search_by_email_is_exact_and_case_insensitive(harness, me):
    await create_user(harness, "Findme@Example.com", username="findable")
    r = await harness.client.post(SEARCH, json={"query": "FINDME@example.COM"}, headers=me)
    assert r.status_code == 200
    [found] = r.json()
    assert set(found) == {"id", "username", "avatar_url", "bio"}
    assert found["username"] == "findable"
    for partial in ("findme@", "findme@example", "indme@example.com", "@example.com"):
        assert await _search(harness, me, partial) == []
    assert await _search(harness, me, "nobody@example.com") == []


async def test_search_orders_exact_prefix_substring_then_similar(harness, me):
    await _users(harness, "annabelle", "joanna", "anne", "anna", "zed", "hannah", "annabel", "Anna Lee")
    names = await _search(harness, me, "anna")
    assert names[0] == "anna"
    assert names[1:4] == ["annabel", "anna lee", "annabelle"] or names[1:4] == [
        "annabel",
        "Anna Lee",
        "annabelle",
    ]
    assert set(names[4:6]) == {"hannah", "joanna"}
    assert names[6:] == ["anne"]
    assert "zed" not in names


async def test_search_is_case_insensitive_and_finds_substrings(harness, me):
    await _users(harness, "GreenThumb", "thumbelina", "bluethumbs")
    assert await _search(harness, me, "THUMB") == ["thumbelina", "bluethumbs", "GreenThumb"]
    assert await _search(harness, me, "umb") == ["bluethumbs", "GreenThumb", "thumbelina"]


async def test_search_with_one_or_two_characters(harness, me):
    await _users(harness, "bo", "bob", "bobby", "abo", "xyz")
    assert await _search(harness, me, "bo") == ["bo", "bob", "bobby", "abo"]
    names = await _search(harness, me, "b")
    assert names[:3] == ["bo", "bob", "bobby"] and "abo" in names and "xyz" not in names


async def test_search_returns_at_most_20(harness, me):
    await _users(harness, *[f"plant{i:02d}" for i in range(25)])
    names = await _search(harness, me, "plant")
    assert len(names) == 20
    assert names == sorted(names)
    assert len(await _search(harness, me, "pl")) == 20


async def test_search_follows_renames(harness, me):
    r = await harness.client.patch(ME, json={"username": "cactuslover"}, headers=me)
    assert r.status_code == 200
    assert await _search(harness, me, "cactus") == ["cactuslover"]
    assert await _search(harness, me, "myself") == []


async def test_search_handles_unicode_and_fts_syntax(harness, me):
    await _users(harness, "张三丰", "李四", 'quo"te', "a*b OR c")
    assert await _search(harness, me, "三丰") == ["张三丰"]
    assert await _search(harness, me, "张三丰") == ["张三丰"]
    assert await _search(harness, me, '"te') == ['quo"te']
    assert await _search(harness, me, "OR c") == ["a*b OR c"]
    assert await _search(harness, me, "*") == ["a*b OR c"]
    assert await _search(harness, me, "%") == []
    assert await _search(harness, me, "NEAR(") == []


async def test_search_skips_disabled_users(harness, me):
    from sproutgate.domain.admin.service import UserFields

    await create_user(harness, "hidden@example.com", username="hiddenfern", account="hiddenfern")
    assert await _search(harness, me, "hiddenfern") == ["hiddenfern"]
    await harness.services.admin.update_user("hiddenfern", UserFields(disabled=True), actor="test")
    assert await _search(harness, me, "hiddenfern") == []
    assert await _search(harness, me, "hidden@example.com") == []


@pytest.mark.engine_independent
@pytest.mark.parametrize("query", ["", "q" * 101])
async def test_search_query_length_is_1_to_100(harness, me, query):
    r = await harness.client.post(SEARCH, json={"query": query}, headers=me)
    assert_problem(r, 422)
    assert error_fields(r) == {"query"}


async def test_search_uses_the_trigram_index(harness):
    """The FTS5 trigram table exists and is kept in step with the users table."""
    from sqlalchemy import text

    if harness.services.db.dialect != "sqlite":
        pytest.skip("FTS5 is SQLite's; tests/backends/test_engines.py checks the pg_trgm index")
    await _users(harness, "indexed")
    async with harness.services.db.read() as s:
        rows = (await s.execute(text("SELECT rowid FROM users_fts WHERE users_fts MATCH '\"dex\"'"))).all()
        plan = " ".join(
            str(r[-1])
            for r in await s.execute(
                text("EXPLAIN QUERY PLAN SELECT rowid FROM users_fts WHERE users_fts MATCH 'dex'")
            )
        )
        count = await UserRepository(s).count()
    assert len(rows) == 1 and count >= 1
    assert "VIRTUAL TABLE INDEX" in plan


async def test_prefix_matches_beat_many_shorter_substring_matches(harness, me):
    """Ranking holds even when more than a page of shorter names merely contain the query."""
    from sproutgate.storage.models import User

    # Straight rows (no password hashing): 120 short names containing "fern" in the middle.
    async with harness.services.db.write() as s:
        now = harness.clock.now()
        for i in range(120):
            s.add(
                User(
                    account=f"sub{i}",
                    account_lower=f"sub{i}",
                    email=f"sub{i}@example.com",
                    username=f"x{i}fern",
                    username_lower=f"x{i}fern",
                    password_hash="x",
                    role="user",
                    disabled=False,
                    level=0,
                    sprout_coins=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    await _users(harness, "fernandez-long-name", "fern")
    names = await _search(harness, me, "fern")
    assert names[:2] == ["fern", "fernandez-long-name"]
    assert len(names) == 20
    assert all(n.endswith("fern") for n in names[2:])
    names = await _search(harness, me, "fe")
    assert names[:2] == ["fern", "fernandez-long-name"]
