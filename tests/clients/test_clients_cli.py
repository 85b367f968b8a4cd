"""``sproutgate clients ...`` (issue 12) as an operator runs it: the command on the test's data dir
and database, checked through the same ClientService the token endpoint uses."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from sproutgate.cli import app as cli_app
from sproutgate.domain.clients.errors import ClientNotFound, InvalidClient

pytestmark = pytest.mark.both_engines


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


async def cli(settings, *args: str) -> Done:  # type: ignore[no-untyped-def]
    """``sproutgate clients ARGS`` on the test's data dir and database (Typer's runner, in a
    thread: the command runs its own event loop, as from a shell)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SPROUTGATE_")}
    env.update(SPROUTGATE_DATA_DIR=str(settings.data_dir), SPROUTGATE_DATABASE_URL=settings.database_url)
    r = await asyncio.to_thread(CliRunner().invoke, cli_app, ["clients", *args], env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Done(r.exit_code, r.stdout, r.stderr)


async def test_create_show_rotate_update_delete_on_the_command_line(make_harness, make_settings):
    settings = make_settings()
    h = await make_harness(settings)  # shares the data dir, so the same secrets key
    done = await cli(
        settings,
        "create",
        "--name", "Family Web",
        "--redirect-uri", "https://web.example.com/callback",
        "--redirect-uri", "http://127.0.0.1/callback",
        "--post-logout-redirect-uri", "https://web.example.com/",
        "--backchannel-logout-uri", "https://web.example.com/backchannel",
        "--first-party",
        "--scope", "openid", "--scope", "offline_access", "--scope", "sproutgate",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    client_id, secret = created["client_id"], created["client_secret"]
    assert created["first_party"] is True and created["public"] is False
    assert created["scopes"] == ["openid", "offline_access", "sproutgate"]
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    assert created["redirect_uris"] == ["https://web.example.com/callback", "http://127.0.0.1/callback"]
    assert (await h.services.clients.authenticate(client_id, secret)).name == "Family Web"

    # show never prints the secret again.
    done = await cli(settings, "show", client_id)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert "client_secret" not in shown and secret not in done.stdout
    assert shown == {k: v for k, v in created.items() if k != "client_secret"}

    done = await cli(settings, "rotate-secret", client_id)
    assert done.returncode == 0, done.stderr
    new_secret = json.loads(done.stdout)["client_secret"]
    assert new_secret != secret
    with pytest.raises(InvalidClient):
        await h.services.clients.authenticate(client_id, secret)
    await h.services.clients.authenticate(client_id, new_secret)

    done = await cli(
        settings, "update", client_id, "--name", "Family Web 2", "--third-party", "--scope", "openid"
    )
    assert done.returncode == 0, done.stderr
    updated = json.loads(done.stdout)
    assert (updated["name"], updated["first_party"], updated["scopes"]) == ("Family Web 2", False, ["openid"])
    assert updated["redirect_uris"] == created["redirect_uris"]  # not given: kept
    done = await cli(
        settings, "update", client_id, "--backchannel-logout-uri", "", "--no-post-logout-redirect-uris"
    )
    assert done.returncode == 0, done.stderr
    updated = json.loads(done.stdout)
    assert updated["backchannel_logout_uri"] is None and updated["post_logout_redirect_uris"] == []
    done = await cli(settings, "update", client_id, "--redirect-uri", "http://example.com/cb")
    assert done.returncode == 2 and "(insecure_redirect_uri)" in done.stderr
    done = await cli(settings, "update", "no-such-client", "--name", "x")
    assert done.returncode == 1 and "no such client" in done.stderr

    done = await cli(settings, "list")
    assert [c["client_id"] for c in json.loads(done.stdout)] == [client_id]

    done = await cli(settings, "delete", client_id)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ClientNotFound):
        await h.services.clients.get(client_id)
    done = await cli(settings, "show", client_id)
    assert done.returncode == 1 and "no such client" in done.stderr

    # Every change is in the audit trail, by "cli", with no secret in it.
    events = [e for e in await h.services.admin.audit_log(20) if e.target == client_id]
    assert [e.action for e in reversed(events)] == [
        "client.create",
        "client.rotate_secret",
        "client.update",
        "client.update",
        "client.delete",
    ]
    assert {e.actor for e in events} == {"cli"}
    assert not any(s in json.dumps([e.details for e in events]) for s in (secret, new_secret))


async def test_public_clients_get_no_secret_and_bad_values_are_refused(make_harness, make_settings):
    settings = make_settings()
    h = await make_harness(settings)
    done = await cli(
        settings, "create", "--name", "Phone app", "--public", "--redirect-uri", "com.example.phone:/oauth"
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert "client_secret" not in created and created["token_endpoint_auth_method"] == "none"
    assert (await h.services.clients.authenticate(created["client_id"], None)).public
    done = await cli(settings, "rotate-secret", created["client_id"])
    assert done.returncode == 1 and "public client has no secret" in done.stderr

    for args, field, code in [
        (["--redirect-uri", "https://a.example/cb#frag"], "redirect_uris", "redirect_uri_fragment"),
        (["--redirect-uri", "http://a.example/cb"], "redirect_uris", "insecure_redirect_uri"),
        (
            ["--public", "--grant-type", "client_credentials"],
            "grant_types",
            "client_credentials_needs_confidential_client",
        ),
        (["--redirect-uri", "https://a.example/cb", "--scope", "admin"], "scopes", "unknown_scope"),
    ]:
        done = await cli(settings, "create", "--name", "Bad", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stdout == "" and f"{field} " in done.stderr and f"({code})" in done.stderr
    assert [c.name for c in await h.services.clients.list()] == ["Phone app"]
