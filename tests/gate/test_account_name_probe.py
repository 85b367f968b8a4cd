"""Issue 11 item 12: whether an account name is taken (409 on register; names are public) is
answered no faster than code requests, per client address."""

from __future__ import annotations

import pytest

from sproutgate.domain.admin.service import UserFields

pytestmark = pytest.mark.both_engines

PASSWORD = "Sprout#2026pw"


async def test_probing_account_names_is_rate_limited_per_address(make_harness, make_settings):
    h = await make_harness(make_settings(limit_code_requests_per_ip="3/hour"))
    await h.services.admin.create_user(
        UserFields(account="taken", email="owner@example.com", password=PASSWORD), actor="test"
    )
    statuses = []
    for i in range(4):
        r = await h.client.post(
            "/api/auth/register",
            json={"account": "taken", "password": PASSWORD, "email": f"p{i}@example.com"},
        )
        statuses.append(r.status_code)
    assert statuses == [409, 409, 409, 429], statuses
    assert int(r.headers["retry-after"]) >= 1
    async with h.new_client() as other:
        r = await other.post(
            "/api/auth/register", json={"account": "taken", "password": PASSWORD, "email": "p9@example.com"}
        )
        assert r.status_code == 409
