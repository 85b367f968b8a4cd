"""Rate limits answer 429 problem+json with Retry-After, keyed so that they reveal nothing."""

from __future__ import annotations

from v1_support import HAN, PASSWORD, assert_problem, create_user, login, request_code

from support.harness import bearer, signup

SIGNUP = "/api/v1/auth/verifications"
SESSIONS = "/api/v1/auth/sessions"


def assert_limited(r, lang_zh=True):
    body = assert_problem(r, 429, "rate_limited")
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 3600
    assert str(retry) in body["detail"]  # the detail names the wait
    assert bool(HAN.search(body["detail"])) is lang_zh
    return retry


async def _fail_login(client, email):
    return await client.post(SESSIONS, json={"email": email, "password": "Wrong#Guess1"})


async def test_failed_logins_per_account_and_ip_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account_ip="3/minute"))
    await create_user(h, "target@example.com")
    for _ in range(3):
        assert_problem(await _fail_login(h.client, "target@example.com"), 401)
    assert_limited(await _fail_login(h.client, "target@example.com"))
    # even the right password waits: the limit is checked before the password
    r = await h.client.post(SESSIONS, json={"email": "target@example.com", "password": PASSWORD})
    assert_limited(r)
    # another identifier from this address, and this identifier from another address, still go through
    assert_problem(await _fail_login(h.client, "someone-else@example.com"), 401)
    async with h.new_client() as other:
        assert (await login(h, "target@example.com", client=other))["access_token"]


async def test_failed_login_limit_is_the_same_for_unknown_accounts(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account_ip="3/minute"))
    await create_user(h, "exists@example.com")
    answers = {}
    for email in ("exists@example.com", "ghost@example.com"):
        statuses = [(await _fail_login(h.client, email)).status_code for _ in range(4)]
        last = await _fail_login(h.client, email)
        answers[email] = (statuses, last.status_code, last.json()["code"], "retry-after" in last.headers)
    assert (
        answers["exists@example.com"]
        == answers["ghost@example.com"]
        == ([401, 401, 401, 429], 429, "rate_limited", True)
    )


async def test_failed_login_limit_is_keyed_on_the_identifier_as_typed_case_insensitively(
    make_harness, make_settings
):
    h = await make_harness(make_settings(limit_login_fail_account_ip="2/minute"))
    await _fail_login(h.client, "Mixed@Example.com")
    await _fail_login(h.client, "mixed@example.com")
    assert_limited(await _fail_login(h.client, "MIXED@EXAMPLE.COM"))


async def test_failed_logins_per_account_from_all_addresses_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account="4/minute"))
    await create_user(h, "popular@example.com")
    for _ in range(4):
        async with h.new_client() as c:
            assert (await _fail_login(c, "popular@example.com")).status_code == 401
    async with h.new_client() as c:
        assert_limited(await _fail_login(c, "popular@example.com"))
    async with h.new_client() as c:
        assert_limited(await _fail_login(c, "popular@example.com"))
        assert (await _fail_login(c, "unrelated@example.com")).status_code == 401


async def test_failed_logins_per_ip_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_ip="3/minute"))
    for i in range(3):
        assert (await _fail_login(h.client, f"spray{i}@example.com")).status_code == 401
    assert_limited(await _fail_login(h.client, "spray9@example.com"))
    async with h.new_client() as other:
        assert (await _fail_login(other, "spray9@example.com")).status_code == 401


async def test_successful_logins_are_not_counted(make_harness, make_settings):
    h = await make_harness(make_settings(limit_login_fail_account_ip="2/minute"))
    await create_user(h, "fine@example.com")
    for _ in range(4):
        await login(h, "fine@example.com")


async def test_one_code_mail_per_address_per_minute(harness):
    await request_code(harness, "eager@example.com")
    r = await harness.client.post("/api/v1/auth/verifications/resend", json={"email": "eager@example.com"})
    retry = assert_limited(r)
    assert retry <= 60
    r = await harness.client.post(
        "/api/v1/auth/verifications/resend",
        json={"email": "eager@example.com"},
        headers={"Accept-Language": "en"},
    )
    assert_limited(r, lang_zh=False)
    # the limit is per address, whoever asks
    async with harness.new_client() as other:
        r = await other.post("/api/v1/auth/password-reset", json={"email": "eager@example.com"})
        assert_limited(r)
    assert len(await harness.mailbox("eager@example.com")) == 1


async def test_code_mail_limit_is_the_same_for_registered_addresses(harness):
    await create_user(harness, "member@example.com")
    answers = []
    for email in ("member@example.com", "stranger@example.com"):
        first = await harness.client.post(
            SIGNUP, json={"email": email, "password": PASSWORD, "username": "abc"}
        )
        second = await harness.client.post(
            SIGNUP, json={"email": email, "password": PASSWORD, "username": "abc"}
        )
        answers.append((first.status_code, second.status_code, second.json()["code"]))
    assert answers[0] == answers[1] == (202, 429, "rate_limited")


async def test_code_requests_per_ip_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_code_requests_per_ip="3/hour"))
    for i in range(3):
        r = await h.client.post("/api/v1/auth/password-reset", json={"email": f"r{i}@example.com"})
        assert r.status_code == 204
    assert_limited(await h.client.post("/api/v1/auth/password-reset", json={"email": "r9@example.com"}))
    r = await h.client.post(SIGNUP, json={"email": "s9@example.com", "password": PASSWORD, "username": "abc"})
    assert_limited(r)
    async with h.new_client() as other:
        assert (
            await other.post("/api/v1/auth/password-reset", json={"email": "r9@example.com"})
        ).status_code == 204


async def test_verify_attempts_per_ip_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_verify_per_ip="3/minute"))
    for _ in range(3):
        r = await h.client.post(
            "/api/v1/auth/verifications/verify", json={"email": "v@example.com", "token": "000000"}
        )
        assert r.status_code == 401
    r = await h.client.post(
        "/api/v1/auth/verifications/verify", json={"email": "v@example.com", "token": "000000"}
    )
    assert_limited(r)
    r = await h.client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": "v@example.com", "token": "000000", "new_password": "Fresh#Garden2026"},
    )
    assert_limited(r)


async def test_refreshes_per_ip_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_refresh_per_ip="3/minute"))
    session = await signup(h, "refresher@example.com")
    token = session["refresh_token"]
    for _ in range(3):
        r = await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token})
        assert r.status_code == 200
        token = r.json()["refresh_token"]
    assert_limited(await h.client.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token}))
    async with h.new_client() as other:
        assert (
            await other.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token})
        ).status_code == 200


async def test_searches_per_user_are_limited(make_harness, make_settings):
    h = await make_harness(make_settings(limit_search_per_user="3/minute"))
    session = await signup(h, "searcher@example.com")
    for _ in range(3):
        r = await h.client.post(
            "/api/v1/users/search", json={"query": "abc"}, headers=bearer(session["access_token"])
        )
        assert r.status_code == 200
    r = await h.client.post(
        "/api/v1/users/search", json={"query": "a@b.co"}, headers=bearer(session["access_token"])
    )
    assert_limited(r)
    # per user, not per address or session
    async with h.new_client() as other:
        second = await login(h, "searcher@example.com", client=other)
        r = await other.post(
            "/api/v1/users/search", json={"query": "abc"}, headers=bearer(second["access_token"])
        )
        assert_limited(r)


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(make_harness, make_settings):
    h = await make_harness(make_settings(trusted_proxies=[], limit_login_fail_ip="2/minute"))
    for _ in range(2):
        async with h.new_client() as c:  # a different X-Forwarded-For each time, same socket peer
            assert (await _fail_login(c, "spoof@example.com")).status_code == 401
    async with h.new_client() as c:
        assert_limited(await _fail_login(c, "spoof2@example.com"))


async def test_limits_can_be_turned_off(make_harness, make_settings):
    h = await make_harness(make_settings(rate_limits_enabled=False))
    for _ in range(12):
        assert (await _fail_login(h.client, "many@example.com")).status_code == 401
    for _ in range(3):
        r = await h.client.post("/api/v1/auth/password-reset", json={"email": "many@example.com"})
        assert r.status_code == 204
