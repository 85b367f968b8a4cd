"""Every error under /api/v1 is application/problem+json, localised, and never a 500."""

from __future__ import annotations

import pytest
from v1_support import HAN, assert_problem, error_fields

SIGNUP = "/api/v1/auth/verifications"


async def test_unknown_route_is_404_problem(client):
    r = await client.get("/api/v1/no-such-endpoint")
    body = assert_problem(r, 404, "route_not_found")
    assert HAN.search(body["detail"])


async def test_wrong_method_is_405_problem_with_allow(client):
    r = await client.get("/api/v1/auth/sessions")
    assert_problem(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


async def test_detail_defaults_to_chinese(client):
    r = await client.post("/api/v1/auth/sessions", json={"email": "nobody@example.com", "password": "x" * 8})
    body = assert_problem(r, 401, "invalid_credentials")
    assert HAN.search(body["detail"])
    assert r.headers["content-language"] == "zh-CN"


@pytest.mark.parametrize("header", ["en", "en-US,en;q=0.9", "fr;q=1, en;q=0.5"])
async def test_detail_in_english_when_asked(client, header):
    r = await client.post(
        "/api/v1/auth/sessions",
        json={"email": "nobody@example.com", "password": "x" * 8},
        headers={"Accept-Language": header},
    )
    body = assert_problem(r, 401, "invalid_credentials")
    assert not HAN.search(body["detail"])
    assert r.headers["content-language"] == "en"


async def test_english_404_and_405(client):
    r = await client.get("/api/v1/nope", headers={"Accept-Language": "en"})
    assert not HAN.search(assert_problem(r, 404)["detail"])
    r = await client.put("/api/v1/users/me", headers={"Accept-Language": "en"})
    assert not HAN.search(assert_problem(r, 405)["detail"])


async def test_missing_fields_are_listed(client):
    r = await client.post(SIGNUP, json={})
    assert_problem(r, 422)
    assert error_fields(r) == {"email", "password", "username"}


async def test_validation_detail_names_the_fields_in_either_language(client):
    r = await client.post(SIGNUP, json={"email": "a@example.com"}, headers={"Accept-Language": "en"})
    body = assert_problem(r, 422)
    assert "password" in body["detail"] and "username" in body["detail"]
    assert not HAN.search(body["detail"])
    for e in body["errors"]:
        assert {"field", "code", "message"} <= e.keys()


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": 123, "password": "Sprout#2026pw", "username": "abc"}, "email"),
        ({"email": "a@example.com", "password": ["x"], "username": "abc"}, "password"),
        ({"email": "a@example.com", "password": "Sprout#2026pw", "username": {"x": 1}}, "username"),
        ({"email": "a@example.com", "password": "Sprout#2026pw", "username": None}, "username"),
    ],
)
async def test_wrong_types_are_422(client, payload, field):
    r = await client.post(SIGNUP, json=payload)
    assert_problem(r, 422)
    assert field in error_fields(r)


@pytest.mark.parametrize(
    "path, payload, field",
    [
        (SIGNUP, {"email": "a@example.com", "password": "Sprout#2026pw", "username": "u" * 31}, "username"),
        (
            SIGNUP,
            {"email": "a" * 330 + "@example.com", "password": "Sprout#2026pw", "username": "abc"},
            "email",
        ),
        (SIGNUP, {"email": "a@example.com", "password": "Sprout#2026pw", "username": "ab"}, "username"),
        ("/api/v1/auth/sessions/refresh", {"refresh_token": "r" * 513}, "refresh_token"),
        ("/api/v1/auth/sessions/refresh", {"refresh_token": ""}, "refresh_token"),
        ("/api/v1/auth/verifications/verify", {"email": "a@example.com", "token": "1" * 17}, "token"),
        ("/api/v1/auth/password-reset", {"email": "x" * 400}, "email"),
    ],
)
async def test_overlong_or_short_strings_are_422(client, path, payload, field):
    r = await client.post(path, json=payload)
    assert_problem(r, 422)
    assert field in error_fields(r)


@pytest.mark.parametrize(
    "path",
    [SIGNUP, "/api/v1/auth/verifications/resend", "/api/v1/auth/password-reset"],
)
async def test_invalid_email_is_422(client, path):
    r = await client.post(
        path, json={"email": "not-an-email", "password": "Sprout#2026pw", "username": "abc"}
    )
    assert_problem(r, 422)
    assert "email" in error_fields(r)


async def test_malformed_json_is_422(client):
    r = await client.post(
        SIGNUP, content=b'{"email": "a@example.com",', headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, "malformed_json")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_422(client, raw):
    r = await client.post(SIGNUP, content=raw, headers={"Content-Type": "application/json"})
    assert_problem(r, 422)


async def test_body_over_64_kib_is_413(client):
    r = await client.post(
        SIGNUP, json={"email": "a@example.com", "password": "Sprout#2026pw", "username": "a" * (65 * 1024)}
    )
    body = assert_problem(r, 413, "payload_too_large")
    assert HAN.search(body["detail"])


async def test_streamed_body_over_64_kib_is_413(client):
    async def chunks():
        yield b'{"email": "a@example.com", "username": "'
        for _ in range(70):
            yield b"a" * 1024
        yield b'"}'

    r = await client.post(SIGNUP, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")


async def test_body_just_under_the_limit_is_read(client):
    r = await client.post(
        "/api/v1/auth/sessions/refresh", json={"refresh_token": "x", "padding": "p" * (60 * 1024)}
    )
    assert_problem(r, 401, "invalid_refresh_token")


async def test_missing_query_parameter_is_422(client, harness):
    from support.harness import bearer, signup

    session = await signup(harness, "q@example.com", username="quser")
    r = await client.get("/api/v1/auth/users", headers=bearer(session["access_token"]))
    assert_problem(r, 422)
    assert error_fields(r) == {"email"}


async def test_body_that_is_not_utf8_is_422(client):
    r = await client.post(
        SIGNUP, content=b'{"email": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, "malformed_json")


async def test_cors_preflight_allows_configured_origins_only(make_harness, make_settings):
    h = await make_harness(make_settings(cors_origins=["https://app.example.com"]))
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    r = await h.client.options(
        "/api/v1/auth/sessions", headers={"Origin": "https://app.example.com", **preflight}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    r = await h.client.options(
        "/api/v1/auth/sessions", headers={"Origin": "https://evil.example.net", **preflight}
    )
    assert "access-control-allow-origin" not in r.headers
