"""The OpenAPI document describes every runtime endpoint of runtime-api-v1.md with its errors."""

from __future__ import annotations

EXPECTED = {
    ("post", "/api/v1/auth/verifications"): {"202", "422", "429"},
    ("post", "/api/v1/auth/verifications/resend"): {"204", "422", "429"},
    ("post", "/api/v1/auth/verifications/verify"): {"200", "401", "422", "429"},
    ("post", "/api/v1/auth/sessions"): {"200", "401", "422", "429"},
    ("delete", "/api/v1/auth/sessions"): {"204", "422"},
    ("post", "/api/v1/auth/sessions/refresh"): {"200", "401", "422"},
    ("post", "/api/v1/auth/password-reset"): {"204", "422", "429"},
    ("post", "/api/v1/auth/password-reset/confirm"): {"204", "401", "422", "429"},
    ("get", "/api/v1/auth/users"): {"200", "403", "404", "422"},
    ("get", "/api/v1/users/me"): {"200", "401"},
    ("patch", "/api/v1/users/me"): {"200", "401", "422"},
    ("delete", "/api/v1/users/me"): {"204", "401", "422", "429"},
    ("get", "/api/v1/users/me/export"): {"200", "401"},
    ("post", "/api/v1/users/search"): {"200", "401", "422", "503"},
    ("get", "/api/v1/infra/health"): {"200"},
    ("get", "/api/v1/health"): {"200"},
    ("get", "/health"): {"200"},
}


async def test_every_runtime_endpoint_is_documented_with_its_errors(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    components = doc["components"]["schemas"]
    for (method, path), statuses in EXPECTED.items():
        operation = doc["paths"][path][method]
        assert operation.get("description") or operation.get("summary"), (method, path)
        responses = operation["responses"]
        assert statuses <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status[0] in "45":
                assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
                ref = response["content"]["application/problem+json"]["schema"]["$ref"]
                problem = components[ref.rsplit("/", 1)[1]]
                assert {"title", "status", "detail", "instance"} <= set(problem["required"])
                assert response["description"] and response["description"] != status
    assert "HTTPValidationError" not in components


async def test_docs_page_is_served(client):
    r = await client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
