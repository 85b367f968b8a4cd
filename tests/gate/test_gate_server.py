"""What only a real process shows: the log never holds an admin token from a query string nor
the generated one (only where it is saved), and an imported installation serves with its config files
read and the environment winning over them."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from gate_support import (
    SAMPLE,
    SAMPLE_PASSWORDS,
    ServerTarget,
    gate_server,  # noqa: F401 - fixture
    server_env,
)

from support.servers import ServerProcess
from support.waiting import wait_until


async def test_admin_token_in_a_query_string_never_reaches_the_log(gate_server):
    server, data_dir = gate_server
    target = ServerTarget(server, data_dir)
    token = target.admin_token
    marker = "WrongSecretMarker" + "x" * 30
    try:
        r = await target.client.get("/api/admin/users", params={"token": token, "q": "nobody-at-all"})
        assert r.status_code == 200 and r.headers["referrer-policy"] == "no-referrer"
        r = await target.client.get("/api/admin/users", params={"token": marker})
        assert r.status_code == 401 and marker not in r.text
        r = await target.client.get("/api/admin/users", params={"token": token, "pageSize": 9999})
        assert r.status_code == 422 and token not in r.text
        r = await target.client.delete("/api/admin/users/no-such-user", params={"token": token})
        assert r.status_code == 404 and token not in r.text
    finally:
        await target.aclose()
    # The access line is written once the response has gone out: give the last one a moment.
    await wait_until(
        lambda: '"DELETE /api/admin/users/no-such-user" 404' in server.log_text(), what="the access line"
    )
    log = server.log_text()
    # Our access log writes the path only; uvicorn's own access log is off.
    assert '"GET /api/admin/users" 200' in log and '"GET /api/admin/users" 401' in log
    assert '"DELETE /api/admin/users/no-such-user" 404' in log
    assert marker not in log and "token=" not in log and "HTTP/1.1" not in log
    # The generated token never shows up: the first start says where it is instead.
    admin_file = data_dir / "config" / "admin.json"
    assert token not in log
    assert f"saved it to {admin_file.resolve()}" in log and "sproutgate admin-token" in log
    assert admin_file.stat().st_mode & 0o777 == 0o600
    assert len(token) >= 43  # 256 bits of url-safe base64


def _run_cli(env: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    full = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run(
        [sys.executable, "-m", "sproutgate", *args], env=full, capture_output=True, text=True, timeout=120
    )


async def test_an_imported_installation_serves_with_its_config_and_env_overrides(tmp_path):
    data_dir = tmp_path / "data"
    env = server_env(data_dir, SPROUTGATE_ISSUER="env-issuer", SPROUTGATE_SMTP_HOST="")
    done = _run_cli(env, "import-sproutgate", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    assert "Imported 6, updated 0, skipped 1, malformed 5" in done.stdout
    assert "admin token: adopted" in done.stdout
    legacy_token = json.loads((SAMPLE / "config" / "admin.json").read_text())["token"]

    with ServerProcess(env=env, log_dir=tmp_path, name="imported") as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as client:
            # A bcrypt user from the old installation signs in over HTTP.
            r = await client.post(
                "/api/auth/login", json={"account": "demo", "password": SAMPLE_PASSWORDS["demo"]}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            # auth.json (tokenTTLHours: 72) is read; SPROUTGATE_ISSUER wins over its issuer.
            lifetime = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")) - datetime.now(UTC)
            assert timedelta(hours=71) < lifetime <= timedelta(hours=72)
            assert jwt.decode(body["token"], options={"verify_signature": False})["iss"] == "env-issuer"
            # email.json names an SMTP host, the empty SPROUTGATE_SMTP_HOST wins: dev mailbox on.
            assert (await client.get("/dev/mailbox")).status_code == 200
            # The old admin token was adopted.
            r = await client.get("/api/admin/users", headers={"Authorization": f"Bearer {legacy_token}"})
            assert r.status_code == 200 and r.json()["total"] == 6
        assert legacy_token not in server.log_text()  # adopted, not generated: never printed

    # Re-running the import against the live database changes nothing.
    again = _run_cli(env, "import-sproutgate", str(SAMPLE), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"] == {"imported": 0, "updated": 0, "skipped": 7, "malformed": 5}


def test_serve_refuses_the_trace_log_level_that_would_log_query_strings():
    from typer.testing import CliRunner

    from sproutgate.cli import app

    r = CliRunner().invoke(app, ["serve", "--log-level", "trace"])
    assert r.exit_code == 2 and "query strings" in r.output
