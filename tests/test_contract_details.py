"""Issue 11 item 13: what the documents promise about bad input, on every face that takes it.

- ``POST /api/v1/auth/sessions`` with an ``email`` that is not an address is a 422 (sign-in by
  account name belongs to the SproutGate face);
- a code that is not six digits is a 422 naming the field, wherever a code is taken (it used to
  be a 401 "wrong code", counted against the caller like a guess)."""

from __future__ import annotations

import pytest

from support.harness import bearer, signup

pytestmark = pytest.mark.both_engines

BAD_CODES = ["12345", "1234567", "12a456", "١٢٣٤٥٦", " 123456"]


def assert_422(r, field: str, code: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["code"] for e in r.json()["errors"]}
    assert errors.get(field) == code, errors


async def test_runtime_sign_in_with_an_account_name_is_422(harness):
    await signup(harness, "named@example.com")
    r = await harness.client.post(
        "/api/v1/auth/sessions", json={"email": "named", "password": "Sprout#2026pw"}
    )
    assert_422(r, "email", "invalid_email")
    # The SproutGate face still signs in by account name.
    r = await harness.client.post("/api/auth/login", json={"account": "named", "password": "Sprout#2026pw"})
    assert r.status_code == 200, r.text


@pytest.mark.engine_independent
@pytest.mark.parametrize("bad", BAD_CODES)
async def test_malformed_codes_are_422_on_every_face(harness, bad):
    c = harness.client
    r = await c.post("/api/v1/auth/verifications/verify", json={"email": "a@example.com", "token": bad})
    assert_422(r, "token", "invalid_code_format")
    r = await c.post(
        "/api/v1/auth/password-reset/confirm",
        json={"email": "a@example.com", "token": bad, "new_password": "Sprout#2026new"},
    )
    assert_422(r, "token", "invalid_code_format")
    r = await c.post("/api/auth/verify-email", json={"account": "someone", "code": bad})
    assert_422(r, "code", "invalid_code_format")
    r = await c.post(
        "/api/auth/reset-password", json={"account": "someone", "code": bad, "newPassword": "Sprout#2026new"}
    )
    assert_422(r, "code", "invalid_code_format")


async def test_malformed_secondary_email_code_is_422(harness):
    session = await signup(harness, "second@example.com")
    r = await harness.client.post(
        "/api/auth/secondary-email/verify",
        json={"email": "other@example.com", "code": "12345"},
        headers=bearer(session["access_token"]),
    )
    assert_422(r, "code", "invalid_code_format")


async def test_a_malformed_code_does_not_burn_the_real_one(harness):
    c = harness.client
    r = await c.post(
        "/api/v1/auth/verifications",
        json={"email": "keep@example.com", "password": "Sprout#2026pw", "username": "keeper"},
    )
    assert r.status_code == 202
    code = await harness.last_code("keep@example.com")
    for _ in range(6):
        r = await c.post(
            "/api/v1/auth/verifications/verify", json={"email": "keep@example.com", "token": "abc"}
        )
        assert r.status_code == 422
    r = await c.post("/api/v1/auth/verifications/verify", json={"email": "keep@example.com", "token": code})
    assert r.status_code == 200, r.text
