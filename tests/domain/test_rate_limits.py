"""The limiter (infra) gives a verdict of its own; the domain turns it into RateLimited. Real
limiter, in memory."""

from __future__ import annotations

import pytest

from sproutgate.config import Settings
from sproutgate.domain.errors import RateLimited
from sproutgate.domain.limits import RateLimits
from sproutgate.infra.ratelimit import LimitExceeded, LimitsRateLimiter


def _limiter(tmp_path) -> LimitsRateLimiter:
    return LimitsRateLimiter(Settings(data_dir=tmp_path, limit_search_per_user="2/minute"))


async def test_limiter_raises_its_own_verdict_not_a_domain_error(tmp_path):
    limiter = _limiter(tmp_path)
    await limiter.hit("search_user", "u1")
    await limiter.hit("search_user", "u1")
    with pytest.raises(LimitExceeded) as caught:
        await limiter.hit("search_user", "u1")
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.rule == "search_user" and 1 <= caught.value.retry_after <= 60


async def test_domain_translates_an_exhausted_rule_into_rate_limited(tmp_path):
    limits = RateLimits(_limiter(tmp_path))
    await limits.hit("search_user", "u2")
    await limits.check("search_user", "u2")  # checking does not count
    await limits.hit("search_user", "u2")
    for attempt in (limits.hit, limits.check):
        with pytest.raises(RateLimited) as caught:
            await attempt("search_user", "u2")
        assert 1 <= caught.value.retry_after <= 60
    await limits.hit("search_user", "someone-else")  # counted per key
    await limits.reset("search_user", "u2")
    await limits.hit("search_user", "u2")
