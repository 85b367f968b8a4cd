"""GET /api/v1/infra/health, /health and /api/v1/health."""

from __future__ import annotations

from v1_support import assert_problem


async def test_liveness(client):
    for path in ("/health", "/api/v1/health"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


async def test_infra_health_reports_the_database_with_latency(client):
    r = await client.get("/api/v1/infra/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    db = body["services"]["database"]
    assert db["status"] == "healthy"
    assert isinstance(db["latency_ms"], int | float) and db["latency_ms"] >= 0
    assert "redis" not in body["services"]


async def test_infra_health_is_unhealthy_when_the_database_is_down(make_harness, make_settings):
    from support.servers import free_port

    port = free_port()  # nothing listens there
    h = await make_harness(
        make_settings(database_url=f"postgresql+asyncpg://sg:sg@127.0.0.1:{port}/sg", auto_migrate=False)
    )
    r = await h.client.get("/api/v1/infra/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "unhealthy"
    assert body["services"]["database"]["status"] == "unhealthy"
    # data endpoints answer 503 problem+json, never 500
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": "a@example.com", "password": "Sprout#2026pw"}
    )
    assert_problem(r, 503)
    assert r.headers["retry-after"]


async def test_infra_health_reports_redis_when_configured(make_harness, make_settings):
    from support.servers import free_port

    h = await make_harness(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    body = (await h.client.get("/api/v1/infra/health")).json()
    assert body["services"]["database"]["status"] == "healthy"
    assert body["services"]["redis"]["status"] == "unhealthy"
    assert body["status"] == "unhealthy"
