"""Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0): logout tokens queued
in the database reach a real HTTP receiver, signed so that it can check them against
/.well-known/jwks.json; a receiver that is away gets them once it is back; one that keeps
refusing makes the delivery fail for good, visibly (status, metrics, log)."""

from __future__ import annotations

import asyncio
import json
import logging
import os

import httpx
import pytest
from typer.testing import CliRunner

from sproutgate.cli import app as cli_app
from sproutgate.domain.backchannel.rules import LogoutTarget
from support.backchannel import LogoutReceiver, validate_logout_token
from support.harness import AppHarness
from support.waiting import wait_until

pytestmark = pytest.mark.both_engines

ISSUER = "http://testserver"  # SPROUTGATE_PUBLIC_URL of the tests

RETRY_FAST = {
    "backchannel_logout_retry_base_seconds": 0.2,
    "backchannel_logout_retry_max_seconds": 0.5,
    "backchannel_logout_timeout_seconds": 2,
}


async def _queue(h: AppHarness, *targets: LogoutTarget) -> list[str]:
    async with h.services.db.write() as s:
        return await h.services.backchannel_worker.queue.enqueue(s, list(targets))


def _as_dict(d) -> dict:
    return {name: getattr(d, name) for name in d.__slots__}


async def _jwks(h: AppHarness) -> dict:
    r = await h.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.json()


async def _scrape(h: AppHarness) -> str:
    """/metrics as a local Prometheus reads it."""
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8080"
    ) as c:  # a loopback Host name
        r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


def _metric(h: AppHarness, result: str) -> float:
    value = h.services.metrics.registry.get_sample_value(
        "sproutgate_backchannel_logout_deliveries_total", {"result": result}
    )
    return value or 0.0


async def test_logout_token_reaches_the_client_signed_and_shaped_per_the_spec(make_harness, make_settings):
    h = await make_harness(make_settings(**RETRY_FAST))
    with LogoutReceiver() as receiver:
        [delivery] = await _queue(h, LogoutTarget("app-one", receiver.uri, "user-1", "session-1"))
        [got] = await receiver.wait_for(1)
        assert got.path == "/backchannel"
        assert got.content_type == "application/x-www-form-urlencoded"
        assert list(got.form) == ["logout_token"]
        claims = validate_logout_token(got.token, await _jwks(h), ISSUER, "app-one")
        assert claims["sub"] == "user-1" and claims["sid"] == "session-1"
        assert claims["exp"] - claims["iat"] == 120
        # Another audience is refused by the same checks.
        with pytest.raises(Exception, match="audience|Audience"):
            validate_logout_token(got.token, await _jwks(h), ISSUER, "app-two")
    status = await wait_until(lambda: _status_is(h, delivery, "delivered"), what="delivered")
    assert status["attempts"] == 1 and status["last_error"] is None and status["delivered_at"]
    assert _metric(h, "sent") == 1


async def _status_is(h: AppHarness, delivery_id: str, wanted: str) -> dict | None:
    found = _as_dict(next(d for d in await h.services.backchannel.recent(limit=500) if d.id == delivery_id))
    return found if found["status"] == wanted else None


async def test_a_client_that_is_down_gets_its_logout_token_once_it_is_back(make_harness, make_settings):
    h = await make_harness(make_settings(**RETRY_FAST))
    receiver = LogoutReceiver()  # not started: connections are refused
    try:
        [delivery] = await _queue(h, LogoutTarget("app-one", receiver.uri, "user-1", "session-9"))
        retrying = await wait_until(
            lambda: _retried_at_least(h, delivery, 2), within=15, what="two failed attempts"
        )
        assert retrying["status"] == "pending" and "Connect" in (retrying["last_error"] or "")
        assert _metric(h, "retry") >= 2
        receiver.start()
        [got] = await receiver.wait_for(1, within=20)
        claims = validate_logout_token(got.token, await _jwks(h), ISSUER, "app-one")
        assert claims["sid"] == "session-9"
        done = await wait_until(lambda: _status_is(h, delivery, "delivered"), what="delivered")
        assert done["last_error"] is None
        assert len(receiver.received) == 1  # delivered once, not again
    finally:
        receiver.stop()


async def _retried_at_least(h: AppHarness, delivery_id: str, attempts: int) -> dict | None:
    found = _as_dict(next(d for d in await h.services.backchannel.recent(limit=500) if d.id == delivery_id))
    return found if found["attempts"] >= attempts and found["status"] == "pending" else None


async def test_a_client_that_keeps_refusing_fails_for_good_and_says_so(make_harness, make_settings, caplog):
    h = await make_harness(make_settings(**RETRY_FAST, backchannel_logout_max_attempts=2))
    caplog.set_level(logging.WARNING, logger="sproutgate.domain.backchannel.service")
    with LogoutReceiver() as receiver:
        receiver.answer_status = 400
        [delivery] = await _queue(h, LogoutTarget("app-one", receiver.uri, "user-1", "session-3"))
        failed = await wait_until(lambda: _status_is(h, delivery, "failed"), within=15, what="failed")
        assert failed["attempts"] == 2 and failed["last_error"].startswith("LogoutRefused: HTTP 400")
        assert failed["next_attempt_at"] is None
        assert _metric(h, "failed") == 1 and _metric(h, "retry") == 1
        assert (await h.services.backchannel.counts())["failed"] == 1
        scrape = await _scrape(h)
        assert 'sproutgate_backchannel_logouts{status="failed"} 1.0' in scrape
        assert 'sproutgate_backchannel_logout_deliveries_total{result="failed"} 1.0' in scrape
        assert any("failed for good" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        # An operator's retry after the client was fixed delivers it.
        receiver.answer_status = 200
        await h.services.backchannel.retry(delivery)
        [got] = await receiver.wait_for(1)
        validate_logout_token(got.token, await _jwks(h), ISSUER, "app-one")
        await wait_until(lambda: _status_is(h, delivery, "delivered"), what="delivered after retry")


async def test_a_retry_of_an_unknown_delivery_is_not_found(harness):
    from sproutgate.domain.errors import NotFound

    with pytest.raises(NotFound):
        await harness.services.backchannel.retry("no-such-delivery")


async def _cli(settings, *args: str):
    """``sproutgate logouts ARGS`` on the test's data dir and database, as an operator runs it."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    env.update(SPROUTGATE_DATA_DIR=str(settings.data_dir), SPROUTGATE_DATABASE_URL=settings.database_url)
    r = await asyncio.to_thread(CliRunner().invoke, cli_app, ["logouts", *args], env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


async def test_operators_list_and_retry_failed_deliveries_on_the_command_line(make_harness, make_settings):
    settings = make_settings(**RETRY_FAST, backchannel_logout_max_attempts=1)
    h = await make_harness(settings)
    with LogoutReceiver() as receiver:
        receiver.answer_status = 503
        [delivery] = await _queue(h, LogoutTarget("app-cli", receiver.uri, "user-7", "session-7"))
        await wait_until(lambda: _status_is(h, delivery, "failed"), within=15, what="failed")
        r = await _cli(settings, "list", "--status", "failed", "--json")
        assert r.exit_code == 0, r.stdout
        listed = json.loads(r.stdout)
        assert listed["counts"]["failed"] == 1
        [row] = listed["deliveries"]
        assert row["id"] == delivery and row["client_id"] == "app-cli" and row["uri"] == receiver.uri
        assert row["last_error"].startswith("LogoutRefused: HTTP 503") and "token" not in json.dumps(row)
        r = await _cli(settings, "list")
        assert r.exit_code == 0 and "failed 1" in r.stdout and delivery in r.stdout
        assert (await _cli(settings, "list", "--status", "lost")).exit_code == 2
        assert (await _cli(settings, "retry")).exit_code == 2
        assert (await _cli(settings, "retry", "no-such-delivery")).exit_code == 1
        receiver.answer_status = 200
        r = await _cli(settings, "retry", "--failed")
        assert r.exit_code == 0 and "1 delivery" in r.stdout
        [got] = await receiver.wait_for(1)
        validate_logout_token(got.token, await _jwks(h), ISSUER, "app-cli")


@pytest.mark.parametrize("status", [302, 500])
async def test_a_redirect_or_server_error_is_no_delivery(make_harness, make_settings, status):
    h = await make_harness(make_settings(**RETRY_FAST))
    with LogoutReceiver() as receiver:
        receiver.answer_status = status
        [delivery] = await _queue(h, LogoutTarget("app-one", receiver.uri, "user-1", "session-5"))
        retrying = await wait_until(lambda: _retried_at_least(h, delivery, 1), within=15, what="retried")
        assert retrying["last_error"].startswith(f"LogoutRefused: HTTP {status}")
        assert receiver.received == []
