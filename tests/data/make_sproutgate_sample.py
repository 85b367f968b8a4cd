"""Regenerates tests/data/sproutgate-sample/: a small SproutGate data/ directory with one user per
password hash kind (real hashes from bcrypt, werkzeug and argon2-cffi) and a few broken files.

    .venv/bin/python tests/data/make_sproutgate_sample.py

The passwords are in PASSWORDS below (tests/gate/sample.py mirrors them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import argon2
import bcrypt
from werkzeug.security import generate_password_hash

ROOT = Path(__file__).parent / "sproutgate-sample"

PASSWORDS = {
    "demo": "Demo#pass2026",  # bcrypt $2a$ (as Go writes it)
    "bcryptb": "Bee#pass2026",  # bcrypt $2b$
    "alice": "Alice#pass2026",  # werkzeug pbkdf2:sha256
    "bob.smith": "Bob#pass2026",  # werkzeug scrypt
    "carol": "Carol#pass2026",  # argon2id, other parameters than SproutGate's
    "dave_disabled": "Dave#pass2026",  # argon2i, disabled
    "dup-email": "Dup#pass2026",  # same address as alice: skipped
}


def user(account: str, email: str, password_hash: str, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "account": account,
        "username": fields.pop("username", account),
        "email": email,
        "level": 0,
        "sproutCoins": 0,
        "secondaryEmails": [],
        "phone": "",
        "avatarUrl": "",
        "bio": "",
        "createdAt": "2025-01-02T03:04:05Z",
        "updatedAt": "2025-06-07T08:09:10Z",
        "password": password_hash,
    }
    record.update(fields)
    return record


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "users").mkdir(parents=True)
    (ROOT / "config").mkdir()
    (ROOT / "pending").mkdir()

    def bcrypt_hash(pw: str, prefix: bytes) -> str:
        return bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=10, prefix=prefix)).decode()

    users = [
        user(
            "demo",
            "demo@example.com",
            bcrypt_hash(PASSWORDS["demo"], b"2a"),
            username="示例用户",
            level=3,
            sproutCoins=10,
            secondaryEmails=["demo2@example.com"],
            phone="13800000000",
            avatarUrl="https://example.com/avatar.png",
            bio="### 简介\n\n你好",
            createdAt="2025-03-14T12:00:00.123456789+08:00",
        ),
        user("bcryptb", "bee@example.com", bcrypt_hash(PASSWORDS["bcryptb"], b"2b")),
        user(
            "alice",
            "Alice@Example.com",
            generate_password_hash(PASSWORDS["alice"], method="pbkdf2:sha256:20000"),
            username="Alice",
            sproutCoins=5,
        ),
        user(
            "bob.smith",
            "bob@example.com",
            generate_password_hash(PASSWORDS["bob.smith"], method="scrypt"),
            avatarUrl="javascript:alert(1)",
        ),
        user(
            "carol",
            "carol@example.com",
            argon2.PasswordHasher(time_cost=3, memory_cost=8192, type=argon2.Type.ID).hash(
                PASSWORDS["carol"]
            ),
        ),
        user(
            "dave_disabled",
            "dave@example.com",
            argon2.PasswordHasher(time_cost=2, memory_cost=4096, type=argon2.Type.I).hash(
                PASSWORDS["dave_disabled"]
            ),
            disabled=True,
        ),
        user(
            "dup-email",
            "alice@example.com",
            generate_password_hash(PASSWORDS["dup-email"], method="pbkdf2:sha256:20000"),
        ),
    ]
    for record in users:
        (ROOT / "users" / f"{record['account']}.json").write_text(
            json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    # Broken on purpose: each is reported as malformed and skipped.
    (ROOT / "users" / "broken-json.json").write_text('{"account": "broken", "email": ', encoding="utf-8")
    (ROOT / "users" / "no-email.json").write_text(
        json.dumps(user("noemail", "", bcrypt_hash("x-password-1", b"2b"))), encoding="utf-8"
    )
    (ROOT / "users" / "plaintext.json").write_text(
        json.dumps(user("plain", "plain@example.com", "demo123")), encoding="utf-8"
    )
    (ROOT / "users" / "bad-account.json").write_text(
        json.dumps(user("张三", "zhang@example.com", bcrypt_hash("x-password-2", b"2b"))), encoding="utf-8"
    )
    (ROOT / "users" / "list.json").write_text("[1, 2, 3]", encoding="utf-8")

    (ROOT / "config" / "admin.json").write_text(
        json.dumps({"token": "legacy-admin-token-0123456789abcdef0123456789abcdef"}), encoding="utf-8"
    )
    (ROOT / "config" / "auth.json").write_text(
        json.dumps({"jwtSecret": "old-hs256-secret", "issuer": "sproutgate-legacy", "tokenTTLHours": 72}),
        encoding="utf-8",
    )
    (ROOT / "config" / "email.json").write_text(
        json.dumps(
            {
                "host": "smtp.example.com",
                "port": 465,
                "username": "no-reply@example.com",
                "password": "smtp-secret",
                "from": "no-reply@example.com",
                "fromName": "萌芽",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (ROOT / "pending" / "someone.json").write_text(
        json.dumps({"account": "someone", "email": "someone@example.com", "code": "123456"}), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
