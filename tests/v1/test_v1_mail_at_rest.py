"""Queued mail is sealed at rest: the outbox row of a code mail holds neither the code nor the
subject in clear, yet the mail arrives intact (real SMTP, dev mailbox). Rows queued before
sealing are still delivered; a row sealed with another key fails without holding up the rest."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from v1_support import CODE_IN_TEXT, PASSWORD

from sproutgate.infra.sealing import Sealer, UnsealError, load_outbox_keys
from sproutgate.storage.models import OutboxMessage
from support.waiting import wait_until

pytestmark = pytest.mark.both_engines

ADMIN_SUBJECT_MASK = "******"


async def stored_rows(settings: Any, to: str) -> list[dict[str, Any]]:
    """The outbox rows for ``to`` as the database holds them (own connection, plain SQL)."""
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT * FROM mail_outbox WHERE to_addr = :to"), {"to": to})
            return [dict(r) for r in result.mappings()]
    finally:
        await engine.dispose()


async def insert_row(settings: Any, to: str, subject: str, text_body: str, **extra: Any) -> str:
    """A row written straight into the table, bypassing the Outbox (as an older version did)."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    row_id = secrets.token_hex(8)
    values = {
        "id": row_id,
        "message_id": f"<{secrets.token_hex(16)}@sproutgate.test>",
        "to_addr": to,
        "subject": subject,
        "text_body": text_body,
        "html_body": None,
        "kind": "signup_code",
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        **extra,
    }
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(OutboxMessage.__table__).values(**values))
    finally:
        await engine.dispose()
    return row_id


async def ask_for_code(h: Any, email: str) -> None:
    r = await h.client.post(
        "/api/v1/auth/verifications", json={"email": email, "password": PASSWORD, "username": "sealed"}
    )
    assert r.status_code == 202, r.text


def smtp_settings(smtp: Any, **more: Any) -> dict[str, Any]:
    return {"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_security": "none", **more}


async def admin_outbox(h: Any, **params: str) -> dict[str, Any]:
    r = await h.client.get(
        "/api/admin/outbox", params=params, headers={"X-Admin-Token": h.services.admin_guard.token}
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_stored_row_holds_no_code_and_the_dev_mailbox_shows_it(harness):
    await ask_for_code(harness, "rest@example.com")
    [mail] = await harness.mailbox("rest@example.com")
    code = CODE_IN_TEXT.search(mail["subject"]).group(0)
    assert code in mail["text"] and "SproutGate" in mail["subject"]

    [row] = await stored_rows(harness.services.settings, "rest@example.com")
    assert row["subject"].startswith("enc1:") and row["text_body"].startswith("enc1:")
    assert row["html_body"] is None
    dump = " ".join(str(v) for v in row.values())
    assert code not in dump and "SproutGate" not in dump and "验证码" not in dump

    # Administrators see the subject with the code masked, never the body.
    [listed] = (await admin_outbox(harness))["messages"]
    assert listed["subject"] == mail["subject"].replace(code, ADMIN_SUBJECT_MASK)
    assert not CODE_IN_TEXT.search(listed["subject"]) and "text" not in listed

    key = harness.services.settings.data_dir / "keys" / "outbox.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32


async def test_sealed_code_arrives_over_smtp(make_harness, make_settings, smtp_server):
    h = await make_harness(make_settings(**smtp_settings(smtp_server)))
    await ask_for_code(h, "sealed-smtp@example.com")
    message = await asyncio.to_thread(
        smtp_server.wait_for, lambda m: m.sent_to("sealed-smtp@example.com"), 15
    )
    code = CODE_IN_TEXT.search(message.subject).group(0)
    assert code in message.text and "SproutGate" in message.subject
    r = await h.client.post(
        "/api/v1/auth/verifications/verify", json={"email": "sealed-smtp@example.com", "token": code}
    )
    assert r.status_code == 200, r.text

    [row] = await stored_rows(h.services.settings, "sealed-smtp@example.com")
    assert row["message_id"] == message.message_id
    assert row["subject"].startswith("enc1:") and code not in row["subject"] + row["text_body"]


async def test_row_queued_before_sealing_is_still_delivered(make_harness, make_settings, smtp_server):
    h = await make_harness(make_settings(**smtp_settings(smtp_server)))
    subject = "[SproutGate] Your sign-up code is 424242"
    await insert_row(h.services.settings, "legacy@example.com", subject, "Your sign-up code is: 424242")
    h.services.outbox.notify()
    message = await asyncio.to_thread(smtp_server.wait_for, lambda m: m.sent_to("legacy@example.com"), 15)
    assert message.subject == subject and "Your sign-up code is: 424242" in message.text

    async def listed_as_sent() -> dict | None:
        [listed] = (await admin_outbox(h))["messages"]
        return listed if listed["status"] == "sent" else None

    # The mail is out a moment before the row is marked sent.
    listed = await wait_until(listed_as_sent, what="the row to be marked sent")
    assert listed["subject"] == "[SproutGate] Your sign-up code is ******"


async def test_dev_mailbox_shows_a_row_queued_before_sealing_as_it_is(harness):
    await insert_row(harness.services.settings, "old@example.com", "Plain old subject", "Plain old body")
    [mail] = await harness.mailbox("old@example.com")
    assert mail["subject"] == "Plain old subject" and mail["text"] == "Plain old body"


async def test_row_sealed_with_another_key_fails_and_the_next_is_sent(
    make_harness, make_settings, smtp_server, caplog
):
    h = await make_harness(make_settings(**smtp_settings(smtp_server)))
    settings = h.services.settings
    # As if the data dir (and its outbox key) had been replaced while this row waited.
    message_id = f"<{secrets.token_hex(16)}@sproutgate.test>"
    foreign = Sealer(os.urandom(32))

    def seal(field: str, value: str) -> str:
        return foreign.seal(value, field=field, message_id=message_id, to_addr="lost@example.com")

    caplog.set_level(logging.WARNING, logger="sproutgate.domain.mail.service")
    lost = await insert_row(
        settings,
        "lost@example.com",
        seal("subject", "[SproutGate] Your sign-up code is 135790"),
        seal("text_body", "Your sign-up code is: 135790"),
        message_id=message_id,
    )
    h.services.outbox.notify()
    await ask_for_code(h, "next@example.com")
    message = await asyncio.to_thread(smtp_server.wait_for, lambda m: m.sent_to("next@example.com"), 15)
    assert CODE_IN_TEXT.search(message.subject)

    async def failed_view() -> dict | None:
        view = await admin_outbox(h, status="failed")
        return view if view["total"] else None

    view = await wait_until(failed_view, what="the foreign row to fail")
    [failed] = view["messages"]
    assert failed["id"] == lost and failed["attempts"] == 1
    assert "outbox.key" in failed["lastError"] and "135790" not in str(view)
    assert failed["subject"] == "(cannot be decrypted with data/keys/outbox.key or a later outbox key)"
    assert not smtp_server.messages_to("lost@example.com")

    # The worker is still running: later mail goes out too.
    await ask_for_code(h, "later@example.com")
    await asyncio.to_thread(smtp_server.wait_for, lambda m: m.sent_to("later@example.com"), 15)
    await admin_outbox(h)  # listing it again does not log it again
    warnings = [r for r in caplog.records if lost in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "135790" not in caplog.text


def test_sealed_fields_are_bound_to_their_row_and_field():
    sealer = Sealer(os.urandom(32))
    row = {"message_id": "<a@sproutgate.test>", "to_addr": "a@example.com"}
    subject = sealer.seal("Code 123456", field="subject", **row)
    assert subject.startswith("enc1:") and sealer.seal("Code 123456", field="subject", **row) != subject
    assert sealer.open(subject, field="subject", **row) == "Code 123456"
    assert sealer.open("not sealed", field="subject", **row) == "not sealed"
    for field, message_id, to_addr in [
        ("text_body", row["message_id"], row["to_addr"]),  # swapped into another field
        ("subject", "<b@sproutgate.test>", row["to_addr"]),  # copied into another row
        ("subject", row["message_id"], "attacker@example.com"),  # recipient changed
    ]:
        with pytest.raises(UnsealError):
            sealer.open(subject, field=field, message_id=message_id, to_addr=to_addr)
    with pytest.raises(UnsealError):
        Sealer(os.urandom(32)).open(subject, field="subject", **row)
    with pytest.raises(UnsealError):
        sealer.open("enc1:!!not base64!!", field="subject", **row)


async def test_outbox_key_rotation_keeps_old_mail_readable(harness):
    """`sproutgate keys rotate-outbox` adds a key: new mail is sealed with it, mail sealed before
    still opens, and an instance that has not re-read the keys yet picks the new one up on a miss."""
    data_dir = harness.services.settings.data_dir
    await ask_for_code(harness, "before-rotation@example.com")
    before = await harness.last_code("before-rotation@example.com")
    stale = Sealer(load_outbox_keys(data_dir))  # an instance that read the keys before the rotation
    r = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sproutgate", "keys", "rotate-outbox"],
        env={**os.environ, "SPROUTGATE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    [new_file] = (data_dir / "keys").glob("outbox-*.key")
    assert new_file.name in r.stdout and stat.S_IMODE(new_file.stat().st_mode) == 0o600
    harness.services.outbox.sealer._refresh(missed=True)  # as the minute-long re-read would
    await ask_for_code(harness, "after-rotation@example.com")
    after = await harness.last_code("after-rotation@example.com")

    [old_row] = await stored_rows(harness.services.settings, "before-rotation@example.com")
    [new_row] = await stored_rows(harness.services.settings, "after-rotation@example.com")
    newest_only = Sealer(bytes.fromhex(new_file.read_text().strip()))
    original_only = Sealer(bytes.fromhex((data_dir / "keys" / "outbox.key").read_text().strip()))

    def opens(sealer: Sealer, row: dict) -> bool:
        try:
            sealer.open(row["subject"], field="subject", message_id=row["message_id"], to_addr=row["to_addr"])
            return True
        except UnsealError:
            return False

    assert opens(newest_only, new_row) and not opens(original_only, new_row)
    assert opens(original_only, old_row) and not opens(newest_only, old_row)
    # Both still show in the dev mailbox, decrypted.
    assert before in (await harness.mailbox("before-rotation@example.com"))[0]["subject"]
    assert after in (await harness.mailbox("after-rotation@example.com"))[0]["subject"]
    # The stale instance re-reads the keys when a row opens with none of its own.
    stale._reload = lambda: load_outbox_keys(data_dir, create=False)
    clear = stale.open(
        new_row["subject"], field="subject", message_id=new_row["message_id"], to_addr=new_row["to_addr"]
    )
    assert after in clear


async def test_queued_mail_times_come_from_the_one_clock(harness):
    """The outbox writes and reads its times with the clock every other module uses, so a
    message queued while the clock is ahead is stamped and sent by that clock."""
    harness.clock.advance(3 * 24 * 3600)
    await ask_for_code(harness, "clocked@example.com")
    [row] = await stored_rows(harness.services.settings, "clocked@example.com")
    now = harness.clock.now()
    for column in ("created_at", "next_attempt_at"):
        stamped = row[column] if isinstance(row[column], datetime) else datetime.fromisoformat(row[column])
        stamped = stamped if stamped.tzinfo else stamped.replace(tzinfo=UTC)
        assert abs((stamped - now).total_seconds()) < 60, (column, stamped, now)
    for _ in range(200):
        [mail] = await harness.mailbox("clocked@example.com")
        if mail["status"] == "sent":
            break
        await asyncio.sleep(0.05)
    assert mail["status"] == "sent"
    assert abs((datetime.fromisoformat(mail["time"].replace("Z", "+00:00")) - now).total_seconds()) < 60
