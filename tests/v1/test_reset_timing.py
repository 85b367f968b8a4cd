"""Issue 11 item 11: whether an address is registered must not show in how long a reset request
takes. Known and unknown addresses do the same work on the request path; measured here with
interleaved requests on both faces (lower quartiles, so slow requests on a shared machine do not
decide)."""

from __future__ import annotations

import statistics
import time

import pytest
from v1_support import PASSWORD, create_user

pytestmark = pytest.mark.both_engines

ROUNDS = 60


async def _timed(client, path: str, body: dict) -> float:
    start = time.perf_counter()
    r = await client.post(path, json=body)
    elapsed = time.perf_counter() - start
    assert r.status_code in (200, 204), r.text
    return elapsed


@pytest.mark.parametrize("face", ["runtime", "sproutgate"])
async def test_reset_requests_take_as_long_for_unknown_addresses(make_harness, make_settings, face):
    h = await make_harness(make_settings(rate_limits_enabled=False))
    for i in range(ROUNDS + 2):
        await create_user(h, f"known{i}@example.com", account=f"known{i}")
    known: list[float] = []
    unknown: list[float] = []
    for i in range(ROUNDS + 2):
        if face == "runtime":
            path = "/api/v1/auth/password-reset"
            bodies = {"k": {"email": f"known{i}@example.com"}, "u": {"email": f"ghost{i}@example.com"}}
        else:
            path = "/api/auth/forgot-password"
            bodies = {
                "k": {"account": f"known{i}", "email": f"known{i}@example.com"},
                "u": {"account": f"ghost{i}", "email": f"ghost{i}@example.com"},
            }
        # Alternate which goes first, so that drift on a busy machine falls on both alike.
        order = "ku" if i % 2 else "uk"
        took = {which: await _timed(h.client, path, bodies[which]) for which in order}
        k, u = took["k"], took["u"]
        if i >= 2:  # the first requests warm caches up
            known.append(k)
            unknown.append(u)
    # The lower quartile: load from other processes only ever adds time, so the low end of each
    # distribution shows the request's own work best.
    mk, mu = (statistics.quantiles(xs, n=4)[0] for xs in (known, unknown))
    # Within 25 % of each other (or 0.3 ms). Before the fix known addresses took 40-80 % longer
    # (a code row and a sealed mail written for them only); the margin absorbs the noise of a
    # shared 2-core machine running other work.
    assert abs(mk - mu) <= max(0.25 * max(mk, mu), 0.0003), (mk, mu)


async def test_secondary_address_requests_take_as_long_for_addresses_in_use(make_harness, make_settings):
    """The same rule for adding a secondary address: one in use by another account gets a
    notice and a decoy code row instead of a code, so the time tells nothing either."""
    h = await make_harness(make_settings(rate_limits_enabled=False))
    for i in range(ROUNDS + 2):
        await create_user(h, f"taken{i}@example.com", account=f"taken{i}")
    await create_user(h, "asker@example.com", account="asker")
    r = await h.client.post("/api/auth/login", json={"account": "asker", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    path = "/api/auth/secondary-email/request"
    known: list[float] = []
    unknown: list[float] = []
    for i in range(ROUNDS + 2):
        bodies = {"k": {"email": f"taken{i}@example.com"}, "u": {"email": f"free{i}@example.com"}}
        took = {}
        for which in "ku" if i % 2 else "uk":
            start = time.perf_counter()
            r = await h.client.post(path, json=bodies[which], headers=auth)
            took[which] = time.perf_counter() - start
            assert r.status_code == 200, r.text
        if i >= 2:
            known.append(took["k"])
            unknown.append(took["u"])
    mk, mu = (statistics.quantiles(xs, n=4)[0] for xs in (known, unknown))
    assert abs(mk - mu) <= max(0.25 * max(mk, mu), 0.0003), (mk, mu)
