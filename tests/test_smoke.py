import pytest

from support.harness import bearer, signup

pytestmark = pytest.mark.both_engines


async def test_signup_then_profile_roundtrip(harness):
    session = await signup(harness, "first@example.com", username="first")
    r = await harness.client.get("/api/v1/users/me", headers=bearer(session["access_token"]))
    assert r.status_code == 200
    assert r.json()["username"] == "first"
