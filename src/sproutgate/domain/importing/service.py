"""Import of an existing SproutGate ``data/`` directory (``sproutgate import-sproutgate``).

What is read, and what becomes of it:

- ``users/*.json``: one user per file, in the user object's field names plus ``password``, an
  argon2, bcrypt or werkzeug (``pbkdf2:`` / ``scrypt:``) hash. Hashes are stored as they are;
  the first successful sign-in upgrades them to argon2id. A record that cannot be read (bad
  JSON, no usable account, email or hash) is reported as malformed and skipped.
- ``config/admin.json``: the old admin token is adopted when this installation has none yet,
  or with ``update``; never when ``SPROUTGATE_ADMIN_TOKEN`` is set, never when shorter than
  32 characters.
- ``config/auth.json``, ``config/email.json``: copied into this installation's config dir
  (mode 0600) when it has none, or with ``update``; read at the next start, environment
  variables still override them. The old JWT secret is not used: tokens signed by the old
  installation are not honoured, users sign in again.
- ``pending/``, ``reset/``, ``secondary/``: codes that live minutes; counted, not imported.

Users are created by ``accounts.service.add_user``, the one creation path (with its defaults
for what a file leaves out; the file's ``createdAt`` and ``updatedAt`` are kept).

Idempotent: an account already in the database is skipped ("already in the database") unless
``update`` is given, and an update that would change nothing is skipped as "unchanged".
``update`` overwrites profile fields present in the file and adds secondary addresses (it never
removes one); a new primary address replaces the old one by the rule every face follows
(``accounts.rules.secondaries_after_primary_change``): the old address is dropped unless the
file lists it among its ``secondaryEmails``. The password is replaced only while the account
still holds the hash an earlier import stored (one the hasher would upgrade); a password
changed or upgraded here since is kept.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from sproutgate.config import CONFIG_FILES, Settings
from sproutgate.domain.accounts.rules import NewUser, is_valid_account, normalize_email
from sproutgate.domain.accounts.service import add_user, replace_primary_email
from sproutgate.domain.clock import Clock
from sproutgate.domain.codes.service import end_outstanding_codes
from sproutgate.domain.console_sessions.service import end_every_console_session
from sproutgate.domain.errors import Conflict, InvalidInput
from sproutgate.domain.profiles.rules import display_name_lower, is_phone, require_http_url
from sproutgate.domain.sessions.rules import SessionEndReason
from sproutgate.domain.sessions.service import end_sessions
from sproutgate.infra import admin_token as admin_tokens
from sproutgate.infra.hasher import PasswordHasher, hash_scheme
from sproutgate.storage.db import Database
from sproutgate.storage.models import AuditEvent, User
from sproutgate.storage.repositories import (
    AuditRepository,
    CodeRepository,
    UserRepository,
)

MAX_RECORD_BYTES = 1024 * 1024
MIN_ADOPTED_ADMIN_TOKEN = 32
PASSWORD_KEYS = ("password", "passwordHash", "password_hash", "hash")
CODE_DIRS = ("pending", "reset", "secondary")
ADOPTED = "adopted (the old token works for /api/admin)"


class ImportSourceError(Exception):
    """The directory is not a SproutGate data directory."""


class MalformedRecord(Exception):
    """A user file that cannot be imported; the message says why (never a password)."""


@dataclass(slots=True)
class LegacyUser:
    """One user as read from ``users/<name>.json``, checked and normalised."""

    source: str
    account: str
    email: str
    password_hash: str
    username: str
    level: int = 0
    sprout_coins: int = 0
    secondary_emails: list[str] = field(default_factory=list)
    phone: str | None = None
    avatar_url: str | None = None
    bio: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    disabled: bool | None = None
    role: str | None = None
    present: set[str] = field(default_factory=set)  # fields the file actually carries
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    """What happened to one file: imported, updated, skipped or malformed, and why."""

    source: str
    action: str
    account: str | None = None
    reason: str | None = None
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.source, "action": self.action, "account": self.account}
        if self.reason:
            out["reason"] = self.reason
        if self.changed:
            out["changed"] = self.changed
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass(slots=True)
class ImportReport:
    source: str
    dry_run: bool
    update: bool
    outcomes: list[Outcome] = field(default_factory=list)
    admin_token: str = "none in the source"
    config: dict[str, str] = field(default_factory=dict)
    not_imported: dict[str, int] = field(default_factory=dict)

    def of(self, action: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == action]

    def counts(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in ("imported", "updated", "skipped", "malformed")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dryRun": self.dry_run,
            "update": self.update,
            "counts": self.counts(),
            "users": [o.to_dict() for o in self.outcomes],
            "adminToken": self.admin_token,
            "config": self.config,
            "notImported": self.not_imported,
        }


# -- reading records ------------------------------------------------------------------------
def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds or seconds
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "T", 1)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Go writes nanoseconds
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value < 2**31:
        return value
    return None


def parse_user_record(raw: bytes, source: str) -> LegacyUser:
    """Check one user file. Raises MalformedRecord when it cannot be imported at all; fields
    that break a rule but need not stop the import are dropped or kept with a warning."""
    if len(raw) > MAX_RECORD_BYTES:
        raise MalformedRecord(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MalformedRecord("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MalformedRecord(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise MalformedRecord("not a JSON object")

    account = data.get("account")
    if account is None:
        account = Path(source).stem  # users/<account>.json
    if not isinstance(account, str) or not is_valid_account(account.strip()):
        raise MalformedRecord(
            f"account name {str(account)[:40]!r} does not fit the rules (3-32 letters, digits, _ - .)"
        )
    account = account.strip()

    email = data.get("email")
    if not isinstance(email, str) or not email.strip():
        raise MalformedRecord("no email")
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise MalformedRecord(f"invalid email {email[:80]!r}") from None

    password_hash = next((data[k] for k in PASSWORD_KEYS if isinstance(data.get(k), str) and data[k]), None)
    if password_hash is None:
        raise MalformedRecord("no password hash")
    if hash_scheme(password_hash) is None:
        raise MalformedRecord("password is not an argon2, bcrypt or werkzeug (pbkdf2:/scrypt:) hash")

    user = LegacyUser(source=source, account=account, email=email, password_hash=password_hash, username="")
    warn = user.warnings.append
    present = user.present
    present.update({"email", "password"})

    username = data.get("username")
    if isinstance(username, str) and username.strip():
        user.username = username.strip()
        present.add("username")
        if len(user.username) > 64:
            user.username = user.username[:64]
            warn("username cut to 64 characters")
        elif len(user.username) > 30:
            warn("username longer than 30 characters (kept)")
    else:
        user.username = account

    for key, attr in (("level", "level"), ("sproutCoins", "sprout_coins")):
        if key in data and data[key] is not None:
            number = _count(data[key])
            if number is None:
                warn(f"{key} is not a whole number >= 0 (ignored)")
            else:
                setattr(user, attr, number)
                present.add(attr)

    phone = data.get("phone")
    if isinstance(phone, int) and not isinstance(phone, bool):
        phone = str(phone)
    if isinstance(phone, str) and phone.strip():
        phone = phone.strip()
        if len(phone) > 20:
            warn("phone longer than 20 characters (dropped)")
        else:
            if not is_phone(phone):
                warn("phone has characters other than digits, spaces, + and - (kept)")
            user.phone = phone
            present.add("phone")
    elif phone == "":
        present.add("phone")

    avatar = data.get("avatarUrl")
    if isinstance(avatar, str) and avatar.strip():
        try:
            user.avatar_url = require_http_url(avatar.strip(), "avatarUrl")
            present.add("avatar_url")
        except InvalidInput:
            warn("avatarUrl is not an http(s) URL (dropped)")
    elif avatar == "":
        present.add("avatar_url")

    bio = data.get("bio")
    if isinstance(bio, str):
        user.bio = bio or None
        present.add("bio")
        if len(bio) > 2000:
            warn("bio longer than 2000 characters (kept)")

    secondary = data.get("secondaryEmails")
    if isinstance(secondary, list):
        present.add("secondary_emails")
        for item in secondary:
            try:
                address = normalize_email(str(item))
            except InvalidInput:
                warn(f"secondary email {str(item)[:80]!r} is invalid (dropped)")
                continue
            if address != email and address not in user.secondary_emails:
                user.secondary_emails.append(address)
    elif secondary is not None:
        warn("secondaryEmails is not a list (ignored)")

    for key, attr in (("createdAt", "created_at"), ("updatedAt", "updated_at")):
        if data.get(key) not in (None, ""):
            when = _parse_time(data[key])
            if when is None:
                warn(f"{key} is not an ISO 8601 time (ignored)")
            setattr(user, attr, when)

    if isinstance(data.get("disabled"), bool):
        user.disabled = data["disabled"]
        present.add("disabled")
    if data.get("role") in ("user", "admin"):
        user.role = data["role"]
        present.add("role")
    elif data.get("role") is not None:
        warn("role is neither 'user' nor 'admin' (ignored)")
    return user


# -- the import -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Claims:
    """Accounts and addresses taken by earlier records of this run (what a dry run has not
    written, and duplicates inside the source)."""

    accounts: dict[str, str] = field(default_factory=dict)  # account_lower -> source file
    emails: dict[str, str] = field(default_factory=dict)  # address -> account


class SproutGateImporter:
    def __init__(self, settings: Settings, db: Database, hasher: PasswordHasher, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.hasher = hasher
        self.clock = clock

    @staticmethod
    def locate(directory: Path) -> Path:
        """The data directory: ``directory`` itself or its ``data/``. Raises ImportSourceError."""
        for candidate in (directory, directory / "data"):
            if (candidate / "users").is_dir():
                return candidate
        if not directory.is_dir():
            raise ImportSourceError(f"{directory} is not a directory")
        raise ImportSourceError(f"{directory} has no users/ directory (nor data/users/)")

    @staticmethod
    def user_files(root: Path) -> list[Path]:
        return sorted(p for p in (root / "users").glob("*.json") if p.is_file())

    async def run(
        self,
        directory: Path,
        *,
        update: bool = False,
        dry_run: bool = False,
        progress: Callable[[Outcome], None] | None = None,
        actor: str = "cli",
    ) -> ImportReport:
        """Import ``directory``. Raises ImportSourceError; every other problem is reported."""
        root = self.locate(directory)
        report = ImportReport(source=str(root), dry_run=dry_run, update=update)
        claims = _Claims()
        for path in self.user_files(root):
            outcome = await self._import_file(path, claims, update=update, dry_run=dry_run)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        report.admin_token = self._admin_token(root, update=update, dry_run=dry_run)
        if report.admin_token == ADOPTED:
            # The admin token was replaced: console sessions opened with the old one end.
            await end_every_console_session(self.db)
        report.config = self._config_files(root, update=update, dry_run=dry_run)
        for name in CODE_DIRS:
            if (root / name).is_dir():
                report.not_imported[name] = sum(1 for _ in (root / name).glob("*.json"))
        if not dry_run:
            await self._audit(report, actor)
        return report

    @classmethod
    def count_files(cls, directory: Path) -> int:
        """How many user files ``directory`` holds. Raises ImportSourceError."""
        return len(cls.user_files(cls.locate(directory)))

    async def _import_file(self, path: Path, claims: _Claims, *, update: bool, dry_run: bool) -> Outcome:
        source = path.name
        try:
            record = parse_user_record(await asyncio.to_thread(path.read_bytes), source)
        except OSError as exc:
            return Outcome(source, "malformed", reason=f"unreadable ({exc.strerror or exc})")
        except MalformedRecord as exc:
            return Outcome(source, "malformed", reason=str(exc))
        earlier = claims.accounts.get(record.account.lower())
        if earlier is not None:
            return Outcome(
                source, "skipped", record.account, f"account also in {earlier}", warnings=record.warnings
            )
        claims.accounts[record.account.lower()] = source
        session_factory = self.db.read if dry_run else self.db.write
        try:
            async with session_factory() as s:
                users = UserRepository(s)
                existing = await users.by_account(record.account)
                if existing is None:
                    outcome = await self._create(users, record, claims, dry_run)
                elif not update:
                    outcome = Outcome(source, "skipped", existing.account, "already in the database")
                else:
                    outcome = await self._update(s, users, existing, record, claims, dry_run)
        except (IntegrityError, Conflict):
            # Someone (a running server) took the account or an address meanwhile.
            outcome = Outcome(source, "skipped", record.account, "account or email taken while importing")
        outcome.warnings = record.warnings + outcome.warnings
        return outcome

    async def _owner_account(self, users: UserRepository, email: str, claims: _Claims) -> str | None:
        """The account an address belongs to, in the database or earlier in this run."""
        owner_id = await users.email_owner(email)
        if owner_id is not None:
            owner = await users.get(owner_id)
            return owner.account if owner else "?"
        return claims.emails.get(email)

    async def _free_secondaries(
        self, users: UserRepository, record: LegacyUser, claims: _Claims, mine: set[str], warnings: list[str]
    ) -> list[str]:
        free = []
        for address in record.secondary_emails:
            if address in mine:
                continue
            owner = await self._owner_account(users, address, claims)
            if owner is not None and owner.lower() != record.account.lower():
                warnings.append(f"secondary email {address} belongs to {owner} (dropped)")
                continue
            free.append(address)
        return free

    async def _create(
        self, users: UserRepository, record: LegacyUser, claims: _Claims, dry_run: bool
    ) -> Outcome:
        owner = await self._owner_account(users, record.email, claims)
        if owner is not None:
            return Outcome(
                record.source, "skipped", record.account, f"email {record.email} belongs to {owner}"
            )
        warnings: list[str] = []
        secondaries = await self._free_secondaries(users, record, claims, {record.email}, warnings)
        for address in (record.email, *secondaries):
            claims.emails[address] = record.account
        if not dry_run:
            await add_user(
                users.s,
                NewUser(
                    email=record.email,
                    password_hash=record.password_hash,
                    account=record.account,
                    username=record.username,
                    secondary_emails=tuple(secondaries),
                    disabled=bool(record.disabled),
                    level=record.level,
                    sprout_coins=record.sprout_coins,
                    phone=record.phone,
                    avatar_url=record.avatar_url,
                    bio=record.bio,
                    created_at=record.created_at,
                    updated_at=record.updated_at,
                    **({"role": record.role} if record.role else {}),
                ),
                self.clock.now(),
            )
        return Outcome(record.source, "imported", record.account, warnings=warnings)

    async def _update(
        self, s, users: UserRepository, user: User, record: LegacyUser, claims: _Claims, dry_run: bool
    ) -> Outcome:  # type: ignore[no-untyped-def]
        warnings: list[str] = []
        changed: list[str] = []
        now = self.clock.now()
        current_secondaries = await users.secondary_emails(user.id)
        mine = {user.email, *current_secondaries}

        new_primary = None
        if record.email != user.email:
            owner = await self._owner_account(users, record.email, claims)
            if owner is not None and owner.lower() != user.account_lower:
                warnings.append(f"email {record.email} belongs to {owner} (kept {user.email})")
            else:
                new_primary = record.email
                changed.append("email")
        added = await self._free_secondaries(users, record, claims, mine | {record.email}, warnings)
        if added:
            changed.append("secondaryEmails")

        replace_password = False
        if record.password_hash != user.password_hash:
            if self.hasher.needs_rehash(user.password_hash):
                replace_password = True
                changed.append("password")
            else:
                warnings.append("password changed or upgraded here since the import (kept)")

        simple = {}
        for attr, wire in (
            ("username", "username"),
            ("level", "level"),
            ("sprout_coins", "sproutCoins"),
            ("phone", "phone"),
            ("avatar_url", "avatarUrl"),
            ("bio", "bio"),
            ("disabled", "disabled"),
            ("role", "role"),
        ):
            if attr in record.present and getattr(record, attr) != getattr(user, attr):
                simple[attr] = getattr(record, attr)
                changed.append(wire)

        if not changed:
            return Outcome(record.source, "skipped", user.account, "unchanged", warnings=warnings)
        for address in added:
            claims.emails[address] = user.account
        if new_primary:
            claims.emails[new_primary] = user.account
        if not dry_run:
            if new_primary:
                # The one rule (accounts.rules.secondaries_after_primary_change): the old
                # address stays only when the record lists it among its secondary ones.
                await replace_primary_email(users, user, new_primary, now, keep=record.secondary_emails)
            for address in added:
                await users.add_email(user.id, address, False, now)
            for attr, value in simple.items():
                setattr(user, attr, value)
            if "username" in simple:
                user.username_lower = display_name_lower(user.username)
            if replace_password:
                user.password_hash = record.password_hash
            user.updated_at = now
            if replace_password or simple.get("disabled") is True:
                await end_sessions(s, user.id, now, SessionEndReason.IMPORT_UPDATE)
                await end_outstanding_codes(CodeRepository(s), user.id)
        return Outcome(record.source, "updated", user.account, changed=changed, warnings=warnings)

    def _admin_token(self, root: Path, *, update: bool, dry_run: bool) -> str:
        path = root / "config" / "admin.json"
        if not path.is_file():
            return "none in the source"
        legacy = admin_tokens.read_admin_file(path)
        if legacy is None:
            return "unreadable admin.json in the source (not adopted)"
        if self.settings.admin_token:
            return "not adopted: SPROUTGATE_ADMIN_TOKEN is set and wins"
        if len(legacy) < MIN_ADOPTED_ADMIN_TOKEN:
            return f"not adopted: shorter than {MIN_ADOPTED_ADMIN_TOKEN} characters"
        current = admin_tokens.read_admin_file(admin_tokens.admin_file(self.settings))
        if current == legacy:
            return "unchanged (already adopted)"
        if current is not None and not update:
            return "not adopted: this installation has its own (--update adopts the old one)"
        if dry_run:
            return "would be adopted"
        admin_tokens.adopt(self.settings, legacy)
        return ADOPTED

    def _config_files(self, root: Path, *, update: bool, dry_run: bool) -> dict[str, str]:
        results: dict[str, str] = {}
        for name, reader in CONFIG_FILES.items():
            source = root / "config" / name
            if not source.is_file():
                continue
            try:
                data = json.loads(source.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError):
                results[name] = "malformed in the source (not copied)"
                continue
            if not isinstance(data, dict):
                results[name] = "not a JSON object in the source (not copied)"
                continue
            understood = sorted(reader(data, source))
            used = f"settings: {', '.join(understood)}" if understood else "no setting understood"
            target = self.settings.config_dir / name
            existing = None
            if target.is_file():
                try:
                    existing = json.loads(target.read_text(encoding="utf-8-sig"))
                except (OSError, ValueError):
                    existing = ...
            if existing == data:
                results[name] = f"unchanged ({used})"
            elif target.exists() and not update:
                results[name] = "not copied: this installation has its own (--update replaces it)"
            elif dry_run:
                results[name] = f"would be copied ({used})"
            else:
                admin_tokens.write_private_json(target, data)
                results[name] = f"copied, used from the next start ({used})"
        return results

    async def _audit(self, report: ImportReport, actor: str) -> None:
        details: dict[str, Any] = {"counts": report.counts(), "update": report.update}
        updated = [o.account for o in report.of("updated")]
        if updated:
            details["updated"] = updated[:500]
        details["adminToken"] = report.admin_token
        async with self.db.write() as s:
            AuditRepository(s).add(
                AuditEvent(
                    at=self.clock.now(),
                    actor=actor,
                    action="import.sproutgate",
                    target=report.source[-128:],
                    details=details,
                    ip=None,
                )
            )
