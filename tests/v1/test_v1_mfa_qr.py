"""The enrolment QR code read as a person's phone would: the SVG the API answers is drawn to a
PNG (rsvg-convert), read with zbarimg, and the code computed from what it says with oathtool,
independent of pyotp. The Debian tools are installed on first use by tests/support/debian.py,
like tests/web's Chromium."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from v1_support import create_user, login

from support.debian import ensure_debian_packages
from support.harness import bearer

# Each command the test runs, by the Debian package that provides it.
TOOLS = {"zbarimg": "zbar-tools", "oathtool": "oathtool", "rsvg-convert": "librsvg2-bin"}


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout.strip()


async def test_the_qr_code_scans_and_an_independent_totp_tool_agrees(harness, tmp_path: Path):
    await asyncio.to_thread(ensure_debian_packages, TOOLS)
    h = harness
    assert h.clock.offset.total_seconds() == 0  # oathtool uses the machine's clock
    await create_user(h, "scan@example.com", account="scanme")
    auth = bearer((await login(h, "scan@example.com"))["access_token"])
    r = await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=auth)
    assert r.status_code == 200, r.text
    (tmp_path / "qr.svg").write_text(r.json()["qr_svg"])
    await asyncio.to_thread(
        _run, "rsvg-convert", "-w", "360", str(tmp_path / "qr.svg"), "-o", str(tmp_path / "qr.png")
    )
    scanned = await asyncio.to_thread(_run, "zbarimg", "-q", "--raw", str(tmp_path / "qr.png"))
    assert scanned == r.json()["otpauth_uri"]
    uri = urlsplit(scanned)
    assert uri.path == "/SproutGate:scanme" and parse_qs(uri.query)["issuer"] == ["SproutGate"]
    secret = parse_qs(uri.query)["secret"][0]
    code = await asyncio.to_thread(_run, "oathtool", "--totp", "-b", secret)
    r = await h.client.post("/api/v1/users/me/mfa/totp/verify", json={"code": code}, headers=auth)
    assert r.status_code == 200, r.text
    assert len(r.json()["recovery_codes"]) == 10
