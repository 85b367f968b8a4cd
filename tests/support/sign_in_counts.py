"""The sign-in counter (``sproutgate_sign_ins_total``) as a local Prometheus reads it from an
in-process app's /metrics, with prometheus-client's text-format parser: for the tests of what a
sign-in step counts (passwords, passkeys, second-factor codes)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.harness import AppHarness

SIGN_INS = "sproutgate_sign_ins_total"


async def sign_ins(h: AppHarness) -> dict[str, float]:
    """The sign-in counts by outcome, from /metrics as a local client reads it."""
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8080"
    ) as c:  # a loopback Host name
        r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
        if sample.name == SIGN_INS
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The outcomes that moved, by how much."""
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
