"""The privacy domain's pure rules (holds, audit details, what an export may hold), without HTTP
or a database."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

from sproutgate.domain.privacy.rules import (
    AccountExport,
    DeletedBy,
    ExportedAddress,
    ExportedAppGrant,
    ExportedAuditEvent,
    ExportedAuthenticatorApp,
    ExportedChat,
    ExportedConnectedApp,
    ExportedMail,
    ExportedPasskey,
    ExportedProfile,
    ExportedRecoveryCode,
    ExportedSecondFactors,
    ExportedSession,
    ExportedSignInClient,
    ExportedSignInDevice,
    HeldKind,
    deletion_details,
    held_digest,
    hold_ends,
    self_actor,
)

KEY = b"k" * 32


def test_held_digests_are_keyed_and_kept_apart_by_kind():
    digest = held_digest(KEY, HeldKind.EMAIL, "ada@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == held_digest(KEY, HeldKind.EMAIL, "ada@example.com")
    assert digest != held_digest(b"x" * 32, HeldKind.EMAIL, "ada@example.com")  # another key
    # An account named like an address is another identifier.
    assert digest != held_digest(KEY, HeldKind.ACCOUNT, "ada@example.com")
    assert "ada" not in digest


def test_a_hold_ends_after_its_seconds_and_none_means_at_once():
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert hold_ends(at, 30 * 24 * 3600) == at + timedelta(days=30)
    assert hold_ends(at, 0) == at and hold_ends(at, -5) == at


def test_the_audit_trail_says_who_deleted_and_nothing_else():
    assert deletion_details(DeletedBy.SELF) == {"by": "self"}
    assert deletion_details(DeletedBy.ADMIN) == {"by": "admin"}
    assert self_actor("Ada.L") == "user:Ada.L"


def test_no_export_record_has_a_field_for_a_secret():
    records = (
        AccountExport,
        ExportedProfile,
        ExportedAddress,
        ExportedSession,
        ExportedSignInClient,
        ExportedAuditEvent,
        ExportedChat,
        ExportedMail,
        ExportedSecondFactors,
        ExportedAuthenticatorApp,
        ExportedRecoveryCode,
        ExportedPasskey,
        ExportedSignInDevice,
        ExportedConnectedApp,
        ExportedAppGrant,
    )
    names = {f.name for record in records for f in dataclasses.fields(record)}
    assert not {n for n in names if re.search(r"hash|password|secret|token|sealed|subject|body", n)}
    # Codes of any kind: only the history of recovery codes (when made, when used), never one.
    assert {n for n in names if "code" in n} == {"recovery_codes"}
    assert {f.name for f in dataclasses.fields(ExportedRecoveryCode)} == {"created_at", "used_at"}
