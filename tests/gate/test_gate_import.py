"""``sproutgate import-sproutgate``: the sample data directory, twice, with --update and
--dry-run, broken files and trees, legacy hashes signing in and upgrading, and the CLI."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bcrypt
import pytest
from gate_support import (
    SAMPLE,
    SAMPLE_PASSWORDS,
    asgi_face,  # noqa: F401 - fixture
    assert_problem,
    gate_login,
    valid,
)
from sqlalchemy import select
from typer.testing import CliRunner

from sproutgate.cli import app as cli_app
from sproutgate.domain.importing.service import ImportSourceError, SproutGateImporter, parse_user_record
from sproutgate.infra.hasher import hash_scheme
from sproutgate.storage.models import User, UserEmail

# The import's SQL runs on SQLite and PostgreSQL alike (the CLI tests use SQLite only).
pytestmark = pytest.mark.both_engines

EXPECTED_MALFORMED = {
    "bad-account.json": "does not fit the rules",
    "broken-json.json": "not valid JSON",
    "list.json": "not a JSON object",
    "no-email.json": "no email",
    "plaintext.json": "not an argon2, bcrypt or werkzeug",
}
IMPORTED = {"alice", "bcryptb", "bob.smith", "carol", "dave_disabled", "demo"}


def importer(face) -> SproutGateImporter:  # type: ignore[no-untyped-def]
    s = face.harness.services
    return SproutGateImporter(s.settings, s.db, s.hasher, s.clock)


async def snapshot(face) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Everything the import writes, to compare runs."""
    async with face.harness.services.db.read() as s:
        users = (await s.execute(select(User).order_by(User.account_lower))).scalars().all()
        emails = (await s.execute(select(UserEmail).order_by(UserEmail.email))).scalars().all()
        return [
            (
                u.account,
                u.email,
                u.username,
                u.password_hash,
                u.level,
                u.sprout_coins,
                u.phone,
                u.avatar_url,
                u.bio,
                u.disabled,
                u.role,
                u.created_at,
                u.updated_at,
            )
            for u in users
        ] + [(e.email, e.user_id, e.is_primary) for e in emails]


def copy_sample(tmp_path: Path) -> Path:
    target = tmp_path / "legacy" / "data"
    shutil.copytree(SAMPLE, target)
    return target


# -- the sample -------------------------------------------------------------------------------
async def test_sample_import_reports_every_file(asgi_face):
    report = await importer(asgi_face).run(SAMPLE)
    by_file = {o.source: o for o in report.outcomes}
    assert {o.account for o in report.of("imported")} == IMPORTED
    assert report.counts() == {"imported": 6, "updated": 0, "skipped": 1, "malformed": 5}
    assert by_file["dup-email.json"].reason == "email alice@example.com belongs to alice"
    for name, reason in EXPECTED_MALFORMED.items():
        assert reason in by_file[name].reason, by_file[name]
    assert "demo123" not in json.dumps(report.to_dict())  # never a password in the report
    assert by_file["bob.smith.json"].warnings == ["avatarUrl is not an http(s) URL (dropped)"]
    assert report.not_imported == {"pending": 1}
    # This installation already generated its own admin token: kept unless --update.
    assert report.admin_token.startswith("not adopted: this installation has its own")
    assert set(report.config) == {"auth.json", "email.json"}


async def test_imported_users_carry_every_field(asgi_face):
    face = asgi_face
    await importer(face).run(SAMPLE)
    r = await face.client.get(
        "/api/admin/users", params={"pageSize": 500}, headers={"X-Admin-Token": face.admin_token}
    )
    users = {u["account"]: u for u in r.json()["users"]}
    assert set(users) == IMPORTED
    assert users["demo"] == {
        "account": "demo",
        "username": "示例用户",
        "email": "demo@example.com",
        "level": 3,
        "sproutCoins": 10,
        "secondaryEmails": ["demo2@example.com"],
        "phone": "13800000000",
        "avatarUrl": "https://example.com/avatar.png",
        "bio": "### 简介\n\n你好",
        "locale": "zh-CN",  # the old installation stored no language: the default
        "createdAt": "2025-03-14T04:00:00Z",  # +08:00 in the file
        "updatedAt": "2025-06-07T08:09:10Z",
        "disabled": False,
        "role": "user",
        "mfa": {"totp": False, "passkeys": 0},  # administrators see second factors (issue 13)
    }
    assert users["alice"]["email"] == "alice@example.com" and users["alice"]["sproutCoins"] == 5
    assert users["bob.smith"]["avatarUrl"] is None
    assert users["dave_disabled"]["disabled"] is True
    assert users["bcryptb"]["username"] == "bcryptb" and users["bcryptb"]["phone"] is None


async def test_importing_twice_changes_nothing(asgi_face):
    face = asgi_face
    await importer(face).run(SAMPLE)
    before = await snapshot(face)
    again = await importer(face).run(SAMPLE)
    assert again.counts() == {"imported": 0, "updated": 0, "skipped": 7, "malformed": 5}
    assert {o.reason for o in again.of("skipped") if o.source != "dup-email.json"} == {
        "already in the database"
    }
    assert await snapshot(face) == before
    updated = await importer(face).run(SAMPLE, update=True)
    assert updated.counts()["updated"] == 0
    assert {o.reason for o in updated.of("skipped") if o.source != "dup-email.json"} == {"unchanged"}
    assert await snapshot(face) == before


async def test_dry_run_reports_the_same_and_writes_nothing(asgi_face, tmp_path):
    face = asgi_face
    before = await snapshot(face)
    token = face.admin_token
    report = await importer(face).run(SAMPLE, dry_run=True, update=True)
    assert report.counts() == {"imported": 6, "updated": 0, "skipped": 1, "malformed": 5}
    assert report.admin_token == "would be adopted"
    assert all(v.startswith("would be copied") for v in report.config.values())
    assert await snapshot(face) == before
    config = face.harness.services.settings.config_dir
    assert not (config / "auth.json").exists() and not (config / "email.json").exists()
    assert json.loads((config / "admin.json").read_text())["token"] == token
    assert await face.harness.services.admin.audit_log() == []


# -- legacy hashes ----------------------------------------------------------------------------
async def test_every_legacy_hash_signs_in_and_is_upgraded_to_argon2id(asgi_face):
    face = asgi_face
    await importer(face).run(SAMPLE)
    hasher = face.harness.services.hasher

    async def stored(account: str) -> str:
        async with face.harness.services.db.read() as s:
            return (await s.execute(select(User.password_hash).where(User.account == account))).scalar_one()

    kinds = {}
    for account, password in SAMPLE_PASSWORDS.items():
        if account in ("dave_disabled", "dup-email"):
            continue
        before = await stored(account)
        kinds[account] = hash_scheme(before)
        assert hasher.needs_rehash(before)
        r = await face.client.post("/api/auth/login", json={"account": account, "password": "Wrong#pass99"})
        assert_problem(r, 401, "invalid_credentials")
        token = (await gate_login(face, account, password))["token"]
        after = await stored(account)
        assert after.startswith("$argon2id$") and not hasher.needs_rehash(after)
        await gate_login(face, account, password)  # the upgraded hash checks the same password
        assert await valid(face, token)
    assert sorted(kinds.values()) == ["argon2", "bcrypt", "bcrypt", "pbkdf2", "scrypt"]
    assert (await stored("demo")).startswith("$argon2id$")
    r = await face.client.post(
        "/api/auth/login", json={"account": "dave_disabled", "password": SAMPLE_PASSWORDS["dave_disabled"]}
    )
    assert_problem(r, 403, "account_disabled")
    # Secondary addresses sign in too, on both faces.
    await gate_login(face, "demo2@example.com", SAMPLE_PASSWORDS["demo"])
    r = await face.client.post(
        "/api/v1/auth/sessions", json={"email": "alice@example.com", "password": SAMPLE_PASSWORDS["alice"]}
    )
    assert r.status_code == 200, r.text


# -- --update ---------------------------------------------------------------------------------
async def test_update_refreshes_records_and_keeps_what_the_files_leave_out(asgi_face, tmp_path):
    face = asgi_face
    legacy = copy_sample(tmp_path)
    await importer(face).run(legacy)
    # bcryptb signs in here (hash upgraded); carol does not.
    await gate_login(face, "bcryptb", SAMPLE_PASSWORDS["bcryptb"])
    carol_token = (await gate_login(face, "carol", SAMPLE_PASSWORDS["carol"]))["token"]

    def edit(name: str, **changes) -> None:  # type: ignore[no-untyped-def]
        path = legacy / "users" / f"{name}.json"
        record = json.loads(path.read_text())
        record.update(changes)
        path.write_text(json.dumps(record, ensure_ascii=False))

    new_hash = bcrypt.hashpw(b"Changed#there2026", bcrypt.gensalt(4)).decode()
    edit("alice", sproutCoins=50, email="alice.new@example.com", secondaryEmails=["alice.alt@example.com"])
    edit("bcryptb", password=new_hash)
    edit("dave_disabled", password=new_hash, disabled=False)
    without = await importer(face).run(legacy)
    assert without.counts()["updated"] == 0  # without --update existing accounts stay as they are
    report = await importer(face).run(legacy, update=True)
    by_account = {o.account: o for o in report.outcomes}
    assert by_account["alice"].action == "updated"
    assert by_account["alice"].changed == ["email", "secondaryEmails", "sproutCoins"]
    assert by_account["bcryptb"].action == "skipped" and by_account["bcryptb"].reason == "unchanged"
    assert by_account["bcryptb"].warnings == ["password changed or upgraded here since the import (kept)"]
    assert by_account["dave_disabled"].changed == ["password", "disabled"]

    r = await face.client.get(
        "/api/admin/users", params={"q": "alice"}, headers={"X-Admin-Token": face.admin_token}
    )
    alice = r.json()["users"][0]
    assert alice["email"] == "alice.new@example.com" and alice["sproutCoins"] == 50
    # The replaced primary address is dropped, as through the admin API: the file does not
    # list it among its secondary addresses (test_primary_email_replacement.py has both ways).
    assert alice["secondaryEmails"] == ["alice.alt@example.com"]
    await gate_login(face, "bcryptb", SAMPLE_PASSWORDS["bcryptb"])  # kept the password set here
    await gate_login(face, "dave_disabled", "Changed#there2026")  # replaced the untouched legacy hash
    assert await valid(face, carol_token)
    again = await importer(face).run(legacy, update=True)
    assert again.counts()["updated"] == 0


async def test_update_adopts_the_old_admin_token_and_copies_the_config(asgi_face):
    face = asgi_face
    legacy_token = json.loads((SAMPLE / "config" / "admin.json").read_text())["token"]
    report = await importer(face).run(SAMPLE, update=True)
    assert report.admin_token.startswith("adopted")
    r = await face.client.get("/api/admin/users", headers={"X-Admin-Token": legacy_token})
    assert r.status_code == 200  # the running app picked the new file up
    config = face.harness.services.settings.config_dir
    for name in ("auth.json", "email.json"):
        assert json.loads((config / name).read_text()) == json.loads((SAMPLE / "config" / name).read_text())
        assert (config / name).stat().st_mode & 0o777 == 0o600
    assert "gate_token_ttl_seconds" in report.config["auth.json"]
    again = await importer(face).run(SAMPLE, update=True)
    assert again.admin_token == "unchanged (already adopted)"
    assert set(again.config.values()) == {v for v in again.config.values() if v.startswith("unchanged")}
    events = await face.harness.services.admin.audit_log()
    assert [e.action for e in events] == ["import.sproutgate", "import.sproutgate"]
    assert events[-1].details["counts"]["imported"] == 6


async def test_env_admin_token_is_never_replaced(make_harness, make_settings):
    from gate_support import AsgiTarget

    face = AsgiTarget(await make_harness(make_settings(admin_token="x" * 48)))
    report = await importer(face).run(SAMPLE, update=True)
    assert report.admin_token == "not adopted: SPROUTGATE_ADMIN_TOKEN is set and wins"
    assert (await face.client.get("/api/admin/users", headers={"X-Admin-Token": "x" * 48})).status_code == 200


# -- broken sources ---------------------------------------------------------------------------
async def test_broken_files_are_reported_and_nothing_stored_is_lost(asgi_face, tmp_path):
    face = asgi_face
    legacy = copy_sample(tmp_path)
    await importer(face).run(legacy)
    before = await snapshot(face)
    users = legacy / "users"
    (users / "demo.json").write_text('{"account": "demo", "email": "demo@example.com", "password": ')
    (users / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (users / "empty.json").write_text("")
    (users / "huge.json").write_text(json.dumps({"bio": "x" * (1024 * 1024 + 10)}))
    (users / "short.json").write_text(
        json.dumps({"account": "short", "email": "s@example.com", "password": "$2b$10$short"})
    )
    (users / "notes.txt").write_text("not a user file")
    (legacy / "config" / "auth.json").write_text("{broken")
    (legacy / "config" / "admin.json").write_text(json.dumps({"token": "tooshort"}))
    report = await importer(face).run(legacy, update=True)
    by_file = {o.source: o for o in report.outcomes}
    assert "notes.txt" not in by_file
    for name, reason in {
        "demo.json": "not valid JSON",
        "binary.json": "not UTF-8",
        "empty.json": "not valid JSON",
        "huge.json": "larger than",
        "short.json": "not an argon2, bcrypt or werkzeug",
    }.items():
        assert by_file[name].action == "malformed" and reason in by_file[name].reason, by_file[name]
    assert report.config["auth.json"] == "malformed in the source (not copied)"
    assert report.admin_token == "not adopted: shorter than 32 characters"
    assert await snapshot(face) == before  # demo and everyone else untouched


async def test_a_directory_that_is_not_sproutgate_data_is_refused(tmp_path, asgi_face):
    with pytest.raises(ImportSourceError):
        await importer(asgi_face).run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportSourceError):
        await importer(asgi_face).run(tmp_path / "empty")
    legacy = copy_sample(tmp_path)  # <tmp>/legacy/data: the folder holding data/ works too
    report = await importer(asgi_face).run(legacy.parent)
    assert report.source == str(legacy) and report.counts()["imported"] == 6


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"email": "a@example.com", "password": "$2b$04$" + "a" * 53}, "does not fit"),  # stem "x" too short
        ({"account": "okname", "email": "a@example.com"}, "no password hash"),
        ({"account": "okname", "email": "nope", "password": "$2b$04$" + "a" * 53}, "invalid email"),
    ],
)
def test_record_rules(record, reason):
    from sproutgate.domain.importing.service import MalformedRecord

    with pytest.raises(MalformedRecord, match=reason):
        parse_user_record(json.dumps(record).encode(), "x.json")


def test_record_fields_that_break_rules_become_warnings():
    record = parse_user_record(
        json.dumps(
            {
                "email": "w@example.com",
                "password": "$2b$04$" + "a" * 53,
                "username": "n" * 40,
                "level": -1,
                "sproutCoins": "12",
                "phone": 13800000000,
                "secondaryEmails": ["ok@example.com", "bad", "W@example.com"],
                "createdAt": "yesterday",
                "role": "root",
            }
        ).encode(),
        "warn.json",
    )
    assert record.account == "warn"  # from the file name
    assert record.sprout_coins == 12 and record.level == 0 and record.phone == "13800000000"
    assert record.secondary_emails == ["ok@example.com"]
    assert record.created_at is None and record.role is None
    assert record.warnings == [
        "username longer than 30 characters (kept)",
        "level is not a whole number >= 0 (ignored)",
        "secondary email 'bad' is invalid (dropped)",
        "createdAt is not an ISO 8601 time (ignored)",
        "role is neither 'user' nor 'admin' (ignored)",
    ]


# -- the command ------------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    import os

    for key in list(os.environ):
        if key.startswith("SPROUTGATE_"):
            monkeypatch.delenv(key)
    data = tmp_path / "cli-data"
    monkeypatch.setenv("SPROUTGATE_DATA_DIR", str(data))
    monkeypatch.setenv("SPROUTGATE_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SPROUTGATE_ARGON2_MEMORY_KIB", "1024")
    return data


def test_cli_import_dry_run_then_twice_then_audit(cli_env):
    runner = CliRunner()
    r = runner.invoke(cli_app, ["import-sproutgate", str(SAMPLE), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "Dry run, nothing written: would import 6, updated 0, skipped 1, malformed 5" in r.output
    r = runner.invoke(cli_app, ["import-sproutgate", str(SAMPLE)])
    assert r.exit_code == 0, r.output
    assert "Imported 6, updated 0, skipped 1, malformed 5" in r.output
    assert "malformed plaintext.json: password is not an argon2" in r.output
    assert "skipped   dup-email.json (dup-email): email alice@example.com belongs to alice" in r.output
    # A fresh installation has no admin token yet: the old one is adopted.
    assert "admin token: adopted" in r.output
    assert "Tokens signed by the old installation are not honoured" in r.output
    r = runner.invoke(cli_app, ["import-sproutgate", str(SAMPLE), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["counts"] == {"imported": 0, "updated": 0, "skipped": 7, "malformed": 5}
    r = runner.invoke(cli_app, ["admin-token"])
    assert r.output.strip() == json.loads((SAMPLE / "config" / "admin.json").read_text())["token"]
    r = runner.invoke(cli_app, ["audit", "--json"])
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["action"] for e in events] == ["import.sproutgate", "import.sproutgate"]


def test_cli_import_refuses_a_bad_directory(cli_env, tmp_path):
    r = CliRunner().invoke(cli_app, ["import-sproutgate", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
    assert "not a directory" in r.output


def test_cli_admin_token_show_rotate_and_audit(cli_env):
    runner = CliRunner()
    first = runner.invoke(cli_app, ["admin-token"]).output.strip()
    assert len(first) >= 43  # 256 bits, url-safe base64
    assert runner.invoke(cli_app, ["admin-token"]).output.strip() == first
    rotated = runner.invoke(cli_app, ["admin-token", "--rotate"]).output.strip()
    assert rotated != first and len(rotated) >= 43
    assert runner.invoke(cli_app, ["admin-token"]).output.strip() == rotated
    assert (cli_env / "config" / "admin.json").stat().st_mode & 0o777 == 0o600
    r = runner.invoke(cli_app, ["audit"])
    assert "admin_token.rotate" in r.output and rotated not in r.output


def test_cli_admin_token_from_the_environment_cannot_be_rotated(cli_env, monkeypatch):
    monkeypatch.setenv("SPROUTGATE_ADMIN_TOKEN", "e" * 48)
    runner = CliRunner()
    assert runner.invoke(cli_app, ["admin-token"]).output.strip() == "e" * 48
    r = runner.invoke(cli_app, ["admin-token", "--rotate"])
    assert r.exit_code == 1


def test_cli_user_promote_is_audited(cli_env):
    runner = CliRunner()
    assert runner.invoke(cli_app, ["import-sproutgate", str(SAMPLE)]).exit_code == 0
    r = runner.invoke(cli_app, ["user", "promote", "demo@example.com"])
    assert r.exit_code == 0 and "demo <demo@example.com> is now admin" in r.output
    r = runner.invoke(cli_app, ["user", "promote", "nobody@example.com"])
    assert r.exit_code == 1
    events = [json.loads(x) for x in runner.invoke(cli_app, ["audit", "--json"]).stdout.splitlines()]
    # The record an admin API or console role change writes (AdminService audits every face).
    assert (events[0]["actor"], events[0]["action"], events[0]["target"]) == ("cli", "user.update", "demo")
    assert events[0]["details"] == {"fields": ["role"], "values": {"role": "admin"}}
