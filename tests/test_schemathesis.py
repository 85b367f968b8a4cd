"""Property-based run of every operation in /openapi.json against a real `sproutgate serve`.

No case may answer 5xx, and every answer must match the document: a documented status must
carry the documented content type and schema; a status the document does not list is allowed
only if it is one of the generic ones (401/404/413/422/429/503), and then it must be a proper
problem+json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from support.servers import ServerProcess

MAX_EXAMPLES = 25
GENERIC_STATUSES = {401, 404, 413, 422, 429, 503}
PASSWORD = "Sprout#2026pw"
ADMIN_TOKEN = "schemathesis-admin-token-0123456789abcdef"


def _env(data_dir: Path) -> dict[str, Any]:
    return {
        "SPROUTGATE_DATA_DIR": str(data_dir),
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_RATE_LIMITS_ENABLED": "false",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running server and an administrator's bearer token."""
    root = tmp_path_factory.mktemp("schemathesis")
    env = _env(root / "data")
    with (
        ServerProcess(env, cwd=root, log_dir=root) as proc,
        httpx.Client(base_url=proc.base_url, timeout=15) as c,
    ):
        email = "fuzz-admin@example.com"
        r = c.post(
            "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "fuzzer"}
        )
        assert r.status_code == 202, r.text
        subject = c.get("/dev/mailbox", params={"to": email}).json()[0]["subject"]
        code = re.search(r"(?<!\d)\d{6}(?!\d)", subject).group(0)
        r = c.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
        assert r.status_code == 200, r.text
        child_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        subprocess.run(
            [sys.executable, "-m", "sproutgate", "user", "promote", email],
            env=child_env,
            cwd=root,
            check=True,
            capture_output=True,
            timeout=60,
        )
        token = c.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD}).json()[
            "access_token"
        ]
        yield {"base_url": proc.base_url, "token": token, "process": proc}


@pytest.fixture(scope="module")
def api_schema(served: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_url(served["base_url"] + "/openapi.json")


def problem_for_undocumented_status(ctx: Any, response: Any, case: Any) -> bool | None:
    """Statuses the operation does not document: only the generic ones, as problem+json."""
    documented = {str(s) for s in case.operation.responses.status_codes}
    status = response.status_code
    if str(status) in documented or "default" in documented:
        return None
    assert status in GENERIC_STATUSES, f"{case.operation.label}: undocumented status {status}"
    assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), (
        response.headers
    )
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail", "instance"} <= body.keys(), body
    assert body["status"] == status
    return None


def problem_bodies_are_complete(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer, documented or not, is a complete problem."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), (
        case.operation.label,
        response.status_code,
        response.headers,
    )
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail", "instance"} <= body.keys(), body
    return None


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    problem_for_undocumented_status,
    problem_bodies_are_complete,
]


def _documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the app's document at collection time.

    (schemathesis' own pytest loader does not run under pytest 9, so the operations are
    parametrized here and each is driven with its Hypothesis strategy.)"""
    import tempfile

    from sproutgate.app import create_app
    from sproutgate.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        doc = create_app(Settings(data_dir=Path(tmp) / "data")).openapi()
    return [
        (m, p)
        for p, ops in doc["paths"].items()
        for m in ops
        if m in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = _documented_operations()


def test_the_served_document_has_the_operations_under_test(api_schema: Any) -> None:
    served_ops = {(op.method.lower(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())}
    assert served_ops == set(OPERATIONS)


@pytest.fixture(scope="module")
def http_session() -> Iterator[Any]:
    import requests

    with requests.Session() as session:
        yield session


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_operation_conforms_to_the_document(
    method: str, path: str, mode: GenerationMode, api_schema: Any, served: dict[str, Any], http_session: Any
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {served['token']}", "X-Forwarded-For": "10.250.0.1"}
    if path.startswith("/api/admin"):
        headers["X-Admin-Token"] = ADMIN_TOKEN

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=served["base_url"], session=http_session, headers=headers, checks=CHECKS, timeout=30
        )

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            pytest.skip("nothing in this operation can be made invalid")
        raise
