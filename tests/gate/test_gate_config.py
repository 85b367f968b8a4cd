"""data/config/auth.json and email.json: the keys understood and the precedence
(environment > files > defaults)."""

from __future__ import annotations

import json

import pytest

from sproutgate.config import Settings, parse_duration_seconds, read_config_files


@pytest.fixture
def config_env(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    import os

    for key in list(os.environ):
        if key.startswith("SPROUTGATE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SPROUTGATE_DATA_DIR", str(tmp_path))
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


def write(config_dir, name, data):  # type: ignore[no-untyped-def]
    (config_dir / name).write_text(json.dumps(data) if not isinstance(data, str) else data)


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            {"issuer": "legacy", "tokenTTLHours": 72},
            {"issuer": "legacy", "gate_token_ttl_seconds": 72 * 3600},
        ),
        ({"token_ttl_hours": "24"}, {"gate_token_ttl_seconds": 86400}),
        ({"tokenTtlSeconds": 3600}, {"gate_token_ttl_seconds": 3600}),
        ({"expiresIn": "7d"}, {"gate_token_ttl_seconds": 7 * 86400}),
        ({"jwt": {"expire": "168h", "secret": "x"}}, {"gate_token_ttl_seconds": 168 * 3600}),
        ({"tokenExpireDays": 3}, {"gate_token_ttl_seconds": 3 * 86400}),
        ({"codeExpireMinutes": 5}, {"code_ttl_seconds": 300}),
        ({"jwtSecret": "old", "refreshTokenTTLHours": 1}, {}),
        ({"tokenTTL": "soon"}, {}),
    ],
)
def test_auth_json_keys(tmp_path, auth, expected):
    write(tmp_path, "auth.json", auth)
    assert read_config_files(tmp_path) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        (
            {"host": "smtp.qq.com", "port": 465, "username": "a@qq.com", "password": "p", "from": "a@qq.com"},
            {
                "smtp_host": "smtp.qq.com",
                "smtp_port": 465,
                "smtp_username": "a@qq.com",
                "smtp_password": "p",
                "mail_from": "a@qq.com",
                "smtp_security": "tls",
            },
        ),
        (
            {
                "smtp": {"addr": "mail.example.com:587", "user": "u", "authCode": "c"},
                "fromName": "萌芽",
                "sender": "n@x.cn",
            },
            {
                "smtp_host": "mail.example.com",
                "smtp_port": 587,
                "smtp_username": "u",
                "smtp_password": "c",
                "mail_from": "萌芽 <n@x.cn>",
            },
        ),
        (
            {"host": "h", "port": "2525", "useTLS": False, "startTLS": True},
            {"smtp_host": "h", "smtp_port": 2525, "smtp_security": "starttls"},
        ),
        ({"host": "h", "encryption": "SSL"}, {"smtp_host": "h", "smtp_security": "tls"}),
        ({"host": "h", "port": 70000}, {"smtp_host": "h"}),
        ({"enabled": False, "host": "h"}, {}),
    ],
)
def test_email_json_keys(tmp_path, email, expected):
    write(tmp_path, "email.json", email)
    assert read_config_files(tmp_path) == expected


@pytest.mark.parametrize("content", ["{broken", "[1, 2]", "null"])
def test_unreadable_files_are_ignored(tmp_path, content):
    write(tmp_path, "auth.json", content)
    write(tmp_path, "email.json", content)
    assert read_config_files(tmp_path) == {}


def test_durations():
    assert parse_duration_seconds("1h30m") == 5400
    assert parse_duration_seconds("90") == 90
    assert parse_duration_seconds(2, 3600) == 7200
    assert parse_duration_seconds("2 weeks") is None
    assert parse_duration_seconds(True) is None
    assert parse_duration_seconds(0) is None


def test_files_override_defaults_and_environment_overrides_files(config_env, monkeypatch):
    write(config_env, "auth.json", {"issuer": "from-file", "tokenTTLHours": 48})
    write(config_env, "email.json", {"host": "smtp.example.com", "port": 465, "from": "a@example.com"})
    settings = Settings.load()
    assert settings.issuer == "from-file" and settings.gate_token_ttl_seconds == 48 * 3600
    assert settings.smtp_host == "smtp.example.com" and settings.smtp_security == "tls"
    assert settings.dev_mailbox_enabled is False
    monkeypatch.setenv("SPROUTGATE_ISSUER", "from-env")
    monkeypatch.setenv("SPROUTGATE_SMTP_HOST", "")
    monkeypatch.setenv("SPROUTGATE_SMTP_SECURITY", "starttls")
    settings = Settings.load()
    assert settings.issuer == "from-env" and settings.gate_token_ttl_seconds == 48 * 3600
    assert settings.smtp_host == "" and settings.smtp_port == 465 and settings.smtp_security == "starttls"
    assert settings.dev_mailbox_enabled is True
    assert Settings.load(issuer="explicit").issuer == "explicit"


def test_without_files_the_defaults_hold(config_env):
    settings = Settings.load()
    assert settings.gate_token_ttl_seconds == 7 * 24 * 3600 and settings.issuer == "sproutgate"
