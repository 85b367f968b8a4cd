"""Request ids: one per request, echoed in X-Request-ID, in every log line of the request and
in problem bodies; taken from a trusted proxy only, and only when well formed. The JSON log
(SPROUTGATE_LOG_FORMAT=json) is one object per line, without secrets or query strings."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from metrics_support import ADMIN_TOKEN, PASSWORD, server_env

from sproutgate.api.middleware import REQUEST_ID, current_request_id
from sproutgate.infra import logs
from support.harness import AppHarness
from support.servers import ServerProcess
from support.waiting import wait_until_sync

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("json-log")
    env = server_env(root / "data", SPROUTGATE_LOG_FORMAT="json", SPROUTGATE_REFRESH_GRACE_SECONDS="0")
    with ServerProcess(env, cwd=root, log_dir=root) as proc:
        yield proc


def _entries(server: ServerProcess, request_id: str) -> list[dict]:
    """Every line the server wrote, parsed, once the access line of ``request_id`` is among them
    (it is written once the answer is sent); the harness's own "=== starting" marker aside."""

    def parsed() -> list[dict] | None:
        # Whole lines only: the last one may still be being written.
        lines = server.log_text().split("\n")[:-1]
        entries = []
        for line in lines:
            if not line.strip() or line.startswith("=== "):
                continue
            entry = json.loads(line)  # every line is one JSON object
            assert isinstance(entry, dict), line
            assert {"time", "level", "logger", "message", "pid"} <= set(entry), line
            entries.append(entry)
        logged = any(
            e.get("request_id") == request_id and e["logger"] == "sproutgate.access" for e in entries
        )
        return entries if logged else None

    return wait_until_sync(parsed, what=f"the access line of request {request_id}")


def _signed_in(server: ServerProcess, email: str) -> dict:
    with httpx.Client(base_url=server.base_url, timeout=15) as local:
        r = local.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "logged"}
        )
        assert r.status_code == 202, r.text
        mail = local.get("/dev/mailbox", params={"to": email}).json()
        code = re.search(r"(?<!\d)\d{6}(?!\d)", mail[0]["subject"]).group(0)
        r = local.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        assert r.status_code == 200, r.text
        return r.json()


def test_every_log_line_of_a_request_carries_its_id(json_server):
    session = _signed_in(json_server, "logged@example.com")
    with httpx.Client(base_url=json_server.base_url, timeout=15) as c:
        token = session["refresh_token"]
        assert c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token}).status_code == 200
        reuse = c.post("/api/v1/auth/sessions/refresh", json={"refresh_token": token})
    assert reuse.status_code == 401
    request_id = reuse.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id)
    assert reuse.json()["request_id"] == request_id

    entries = _entries(json_server, request_id)
    mine = [e for e in entries if e.get("request_id") == request_id]
    # The reuse warning and the access line: two lines, one id.
    assert [e["logger"] for e in mine] == ["sproutgate.domain.sessions.service", "sproutgate.access"], mine
    assert "reused" in mine[0]["message"] and mine[0]["level"] == "warning"
    access = mine[1]
    assert (access["method"], access["path"], access["route"], access["status"]) == (
        "POST",
        "/api/v1/auth/sessions/refresh",
        "/api/v1/auth/sessions/refresh",
        401,
    )
    assert isinstance(access["duration_ms"], float) and access["client"] == "127.0.0.1"
    # Other requests have ids of their own; lines outside requests (startup) have none.
    ids = [e["request_id"] for e in entries if e["logger"] == "sproutgate.access"]
    assert len(ids) == len(set(ids))
    assert any("request_id" not in e and e["logger"].startswith("uvicorn") for e in entries)
    # Never a token in the log.
    text = json_server.log_text()
    for secret in (token, session["access_token"], ADMIN_TOKEN):
        assert secret not in text


def test_the_json_log_never_holds_a_query_string(json_server):
    r = httpx.get(json_server.base_url + "/api/v1/health?token=secret-in-query&x=1")
    assert r.status_code == 200
    entries = _entries(json_server, r.headers["x-request-id"])
    (line,) = [e for e in entries if e.get("request_id") == r.headers["x-request-id"]]
    assert line["path"] == "/api/v1/health" and "?" not in line["message"]
    assert "secret-in-query" not in json_server.log_text()


def test_a_trusted_proxy_sets_the_id_and_the_log_uses_it(json_server):
    # 127.0.0.1 is the trusted proxy here.
    sent = "edge-7f3a9c2e-1b4d:req/42"
    r = httpx.get(json_server.base_url + "/api/v1/no-such-route", headers={"X-Request-ID": sent})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == sent and r.json()["request_id"] == sent
    entries = _entries(json_server, sent)
    assert [e["logger"] for e in entries if e.get("request_id") == sent] == ["sproutgate.access"]


async def _call(
    harness: AppHarness, peer: str, path: str = "/api/v1/health", **headers: str | bytes
) -> httpx.Response:
    transport = httpx.ASGITransport(app=harness.app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.get(path, headers=headers)


async def test_an_id_from_a_client_that_is_no_trusted_proxy_is_replaced(harness):
    # The harness trusts 127.0.0.1 as a proxy; 203.0.113.7 is a client on the internet.
    forged = "forged-by-a-client"
    r = await _call(harness, "203.0.113.7", **{"X-Request-ID": forged})
    assert r.headers["x-request-id"] != forged and GENERATED.fullmatch(r.headers["x-request-id"])
    assert (await _call(harness, "127.0.0.1", **{"X-Request-ID": forged})).headers["x-request-id"] == forged


async def test_no_proxy_is_trusted_unless_configured(make_harness, make_settings):
    harness = await make_harness(make_settings(trusted_proxies=[]))
    r = await _call(harness, "127.0.0.1", **{"X-Request-ID": "forged-on-loopback"})
    assert GENERATED.fullmatch(r.headers["x-request-id"])


@pytest.mark.parametrize(
    "malformed",
    [
        "x" * 129,  # too long
        "has space",
        'quote"d',
        "semi;colon",
        "-leading-dash",
        "",
        "ünïcode",
    ],
)
async def test_a_malformed_id_from_a_trusted_proxy_is_replaced(harness, malformed):
    r = await _call(harness, "127.0.0.1", **{"X-Request-ID": malformed.encode()})
    assert GENERATED.fullmatch(r.headers["x-request-id"]), r.headers["x-request-id"]


async def test_the_longest_accepted_id_is_kept(harness):
    longest = "a" * 128
    assert (await _call(harness, "127.0.0.1", **{"X-Request-ID": longest})).headers["x-request-id"] == longest


async def test_every_answer_has_an_id_and_problems_carry_it(harness):
    ok = await _call(harness, "127.0.0.1")
    missing = await _call(harness, "127.0.0.1", "/api/v1/nowhere")
    assert GENERATED.fullmatch(ok.headers["x-request-id"])
    assert missing.json()["request_id"] == missing.headers["x-request-id"] != ok.headers["x-request-id"]
    transport = httpx.ASGITransport(app=harness.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        big = await c.post(
            "/api/v1/auth/sessions", content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"}
        )
    assert big.status_code == 413
    assert big.json()["request_id"] == big.headers["x-request-id"]


def test_text_lines_name_the_request_and_lines_outside_requests_do_not():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter(current_request_id))
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    log = logging.getLogger("sproutgate.test.request_ids")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("outside")
        token = REQUEST_ID.set("abc123")
        try:
            log.warning("inside")
        finally:
            REQUEST_ID.reset(token)
    finally:
        log.removeHandler(handler)
    outside, inside = stream.getvalue().splitlines()
    assert outside.endswith("sproutgate.test.request_ids: outside")
    assert inside.endswith("sproutgate.test.request_ids [abc123]: inside")
