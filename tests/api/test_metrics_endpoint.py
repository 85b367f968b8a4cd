"""/metrics: what a scripted session moves, read with prometheus-client's text-format parser
from a real `sproutgate serve`; who may read it (loopback only, or the bearer token)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from metrics_support import PASSWORD, parse, scrape, server_env, value
from sqlalchemy import text

from support.harness import AppHarness
from support.servers import RedisServer, ServerProcess

SESSIONS = "/api/v1/auth/sessions"
SIGN_INS = "sproutgate_sign_ins_total"
REQUESTS = "sproutgate_http_requests_total"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("metrics")
    env = server_env(
        root / "data",
        SPROUTGATE_REFRESH_GRACE_SECONDS="0",  # a second use of a refresh token is a reuse at once
        SPROUTGATE_LIMIT_LOGIN_FAIL_ACCOUNT_IP="2/hour",  # the third wrong password is refused
    )
    with ServerProcess(env, cwd=root, log_dir=root) as proc:
        yield proc


def _mailed_code(server: ServerProcess, email: str) -> str:
    messages = httpx.get(server.base_url + "/dev/mailbox", params={"to": email}, timeout=15).json()
    found = re.search(r"(?<!\d)\d{6}(?!\d)", messages[0]["subject"])
    assert found, messages
    return found.group(0)


def _moved(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_scripted_session_moves_each_counter_by_what_happened(server):
    before = scrape(server.base_url)
    email = "counted@example.com"
    with httpx.Client(base_url=server.base_url, headers={"X-Forwarded-For": "10.77.0.1"}, timeout=15) as c:
        # Sign-up: one code mailed.
        r = c.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "counted"}
        )
        assert r.status_code == 202, r.text
        r = c.post(
            "/api/v1/auth/verifications/verify", json={"email": email, "token": _mailed_code(server, email)}
        )
        assert r.status_code == 200, r.text
        # Sign-in, then a refresh and a reuse of the token it replaced.
        r = c.post(SESSIONS, json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        first = r.json()["refresh_token"]
        assert c.post(SESSIONS + "/refresh", json={"refresh_token": first}).status_code == 200
        r = c.post(SESSIONS + "/refresh", json={"refresh_token": first})
        assert r.status_code == 401 and r.json()["code"] == "invalid_refresh_token"
        # Two wrong passwords, then the limit refuses the third attempt.
        for _ in range(2):
            assert c.post(SESSIONS, json={"email": email, "password": "Wrong#Pass1"}).status_code == 401
        assert c.post(SESSIONS, json={"email": email, "password": "Wrong#Pass1"}).status_code == 429
        # A reset code for the same address inside a minute: refused by the per-address limit.
        assert c.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 429
        # A templated route and a path no route matches.
        assert c.get("/lang/en", follow_redirects=False).status_code == 303
        assert c.get("/api/v1/no-such-thing-4242").status_code == 404
    after = scrape(server.base_url)

    assert _moved(before, after, SIGN_INS, outcome="success") == 1
    assert _moved(before, after, SIGN_INS, outcome="wrong_password") == 2
    assert _moved(before, after, SIGN_INS, outcome="rate_limited") == 1
    assert _moved(before, after, SIGN_INS, outcome="disabled") == 0
    # Defined before second factors exist, at zero, so alerts can be written against it.
    assert ("sproutgate_sign_ins_total", frozenset({("outcome", "second_factor_required")})) in after
    assert _moved(before, after, "sproutgate_codes_mailed_total", purpose="signup") == 1
    assert _moved(before, after, "sproutgate_codes_mailed_total", purpose="reset") == 0
    assert _moved(before, after, "sproutgate_refresh_token_reuse_detections_total") == 1
    refusals = "sproutgate_rate_limit_refusals_total"
    assert _moved(before, after, refusals, limit="login_fail_account_ip") == 1
    assert _moved(before, after, refusals, limit="code_mail_address") == 1
    assert _moved(before, after, refusals, limit="refresh_ip") == 0

    # Requests by route template, method and status, with their latency.
    assert _moved(before, after, REQUESTS, route=SESSIONS, method="POST", status="200") == 1
    assert _moved(before, after, REQUESTS, route=SESSIONS, method="POST", status="401") == 2
    assert _moved(before, after, REQUESTS, route=SESSIONS, method="POST", status="429") == 1
    assert _moved(before, after, REQUESTS, route="/lang/{code}", method="GET", status="303") == 1
    assert _moved(before, after, REQUESTS, route="unmatched", method="GET", status="404") == 1
    latency = "sproutgate_http_request_duration_seconds"
    assert _moved(before, after, latency + "_count", route=SESSIONS, method="POST") == 4
    assert _moved(before, after, latency + "_bucket", route=SESSIONS, method="POST", le="+Inf") == 4
    assert value(after, latency + "_sum", route=SESSIONS, method="POST") > 0
    assert not [key for key in after if any("no-such-thing" in v for _, v in key[1])]  # never a raw path

    # The worker delivers the sign-up mail (the dev mailbox) and the outbox says so.
    deadline = time.monotonic() + 15
    while _moved(before, after, "sproutgate_mail_deliveries_total", result="sent") < 1:
        assert time.monotonic() < deadline, "no delivery counted"
        time.sleep(0.2)
        after = scrape(server.base_url)
    assert value(after, "sproutgate_outbox_messages", status="sent") >= 1
    assert value(after, "sproutgate_outbox_messages", status="failed") == 0
    assert ("sproutgate_outbox_oldest_waiting_seconds", frozenset()) in after
    assert value(after, "sproutgate_database_up") == 1
    assert ("sproutgate_redis_up", frozenset()) not in after  # no Redis configured
    assert value(after, "sproutgate_db_pool_connections_max") > 0


def test_a_client_forwarded_by_the_proxy_is_refused(server):
    # 127.0.0.1 is a trusted proxy here: the client is 203.0.113.9, not this machine.
    r = httpx.get(server.base_url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "forbidden" and "sproutgate_" not in r.text


async def _get(harness: AppHarness, peer: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=harness.app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        return await c.get("/metrics", headers=headers)


async def test_metrics_answer_loopback_clients_only(harness):
    r = await _get(harness, "127.0.0.1")
    assert r.status_code == 200
    assert value(parse(r.text), "sproutgate_database_up") == 1
    for refused in (
        await _get(harness, "203.0.113.7"),
        await _get(harness, "192.168.1.20"),
        # A reverse proxy on this machine forwarding an outside client.
        await _get(harness, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"}),
        await _get(harness, "127.0.0.1", **{"Forwarded": "for=203.0.113.7"}),
        # A token is no use when none is configured.
        await _get(harness, "203.0.113.7", Authorization="Bearer anything"),
    ):
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden" and "sproutgate_" not in refused.text


@pytest.mark.parametrize(
    "host", ["rebound.example", "rebound.example:8080", "127.0.0.1.nip.io", "localhost.", "127.1", ""]
)
async def test_without_a_token_metrics_refuse_a_page_that_rebound_its_name_to_loopback(harness, host):
    """DNS rebinding: a page at http://rebound.example:8080 whose name now resolves to
    127.0.0.1 reads the answers of this server in the victim's browser, from a loopback
    client, but its requests name rebound.example. Only loopback Host names may scrape
    without a token, as for the dev mailbox (issue 11, item 12)."""
    r = await _get(harness, "127.0.0.1", Host=host)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden" and "sproutgate_" not in r.text


@pytest.mark.parametrize("host", ["localhost", "LocalHost:8080", "127.0.0.1", "127.0.0.1:9100", "[::1]:8080"])
async def test_without_a_token_metrics_answer_loopback_host_names(harness, host):
    r = await _get(harness, "127.0.0.1", Host=host)
    assert r.status_code == 200, r.text


async def test_with_a_token_set_metrics_answer_that_bearer_token_only(make_harness, make_settings):
    token = "scrape-token-7f3a9c2e1b"
    harness = await make_harness(make_settings(metrics_token=token))
    r = await _get(harness, "203.0.113.7", Authorization=f"Bearer {token}")
    assert r.status_code == 200
    assert value(parse(r.text), "sproutgate_database_up") == 1
    for refused in (
        await _get(harness, "127.0.0.1"),  # loopback alone is not enough once a token is set
        await _get(harness, "203.0.113.7"),
        await _get(harness, "203.0.113.7", Authorization=f"Bearer {token}x"),
        await _get(harness, "203.0.113.7", Authorization=f"Bearer {token[:-1]}"),
        await _get(harness, "203.0.113.7", Authorization=f"Basic {token}"),
        await _get(harness, "127.0.0.1", Authorization="Bearer "),
    ):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "sproutgate_" not in refused.text and token not in refused.text


async def test_codes_are_counted_by_purpose_once_mailed_and_decoys_are_not(make_harness, make_settings):
    harness = await make_harness(make_settings(limit_code_mail_per_address="100/minute"))
    client = harness.client
    await client.post(
        "/api/v1/auth/verifications",
        json={"email": "codes@example.com", "password": PASSWORD, "username": "codes"},
    )
    code = await harness.last_code("codes@example.com")
    r = await client.post(
        "/api/v1/auth/verifications/verify", json={"email": "codes@example.com", "token": code}
    )
    assert r.status_code == 200
    before = parse((await _get(harness, "127.0.0.1")).text)
    for email in ("codes@example.com", "nobody-here@example.com", "codes@example.com"):
        assert (await client.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 204
    # A sign-up attempt for a taken address mails a notice, not a code.
    await client.post(
        "/api/v1/auth/verifications",
        json={"email": "codes@example.com", "password": PASSWORD, "username": "again"},
    )
    after = parse((await _get(harness, "127.0.0.1")).text)
    codes = "sproutgate_codes_mailed_total"
    assert _moved(before, after, codes, purpose="reset") == 2
    assert _moved(before, after, codes, purpose="signup") == 0
    assert ("sproutgate_codes_mailed_total", frozenset({("purpose", "decoy")})) not in after


@pytest.mark.both_engines
async def test_the_pool_gauges_follow_the_database_pool(harness, db_engine):
    async with harness.services.db.read() as held:
        await held.execute(text("SELECT 1"))  # a connection checked out while scraping
        during = parse((await _get(harness, "127.0.0.1")).text)
    assert value(during, "sproutgate_db_pool_connections_in_use") >= 1
    settings = harness.services.settings
    if db_engine == "postgres":
        assert value(during, "sproutgate_db_pool_connections_max") == (
            settings.db_pool_size + settings.db_max_overflow
        )
    else:
        assert value(during, "sproutgate_db_pool_connections_max") > 0


@pytest.mark.redis
async def test_redis_going_away_shows_in_the_gauges(make_harness, make_settings):
    with RedisServer() as redis:
        harness = await make_harness(
            make_settings(redis_url=redis.url, redis_timeout_seconds=0.3, redis_retry_seconds=0.5)
        )
        up = parse((await _get(harness, "127.0.0.1")).text)
        assert value(up, "sproutgate_redis_up") == 1
        assert value(up, "sproutgate_rate_limits_local_processes") == 0
        redis.stop()
        # A rate-limited call finds Redis away: this process counts locally from now on.
        r = await harness.client.post(SESSIONS, json={"email": "x@example.com", "password": "Wrong#Pass1"})
        assert r.status_code == 401
        down = parse((await _get(harness, "127.0.0.1")).text)
        assert value(down, "sproutgate_redis_up") == 0
        assert value(down, "sproutgate_rate_limits_local_processes") == 1
        redis.start()
        await asyncio.sleep(0.6)  # past redis_retry_seconds: the next call tries Redis again
        r = await harness.client.post(SESSIONS, json={"email": "x@example.com", "password": "Wrong#Pass1"})
        assert r.status_code == 401
        back = parse((await _get(harness, "127.0.0.1")).text)
        assert value(back, "sproutgate_redis_up") == 1
        assert value(back, "sproutgate_rate_limits_local_processes") == 0
