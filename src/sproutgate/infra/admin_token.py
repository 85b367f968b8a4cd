"""The SproutGate admin token: ``SPROUTGATE_ADMIN_TOKEN`` if set, else ``data/config/admin.json``
(generated on first start, 256 bits, file mode 0600). Compared in constant time, never logged or
printed by the server: on first start it says where the file is and which command shows it."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import shlex
from pathlib import Path

from sproutgate.config import Settings
from sproutgate.infra.keys import write_new_file
from sproutgate.private_files import private_dir


def admin_file(settings: Settings) -> Path:
    return settings.config_dir / "admin.json"


def _write_private(path: Path, payload: dict[str, str]) -> None:
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when a stale temporary file of this name was left behind
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


def read_admin_file(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, str):  # a bare JSON string
        return data.strip() or None
    if isinstance(data, dict):
        # {"token": ...} as written here; SproutGate's own file may spell the key otherwise.
        keys = {"".join(c for c in str(k).lower() if c.isalnum()): v for k, v in data.items()}
        for key in ("token", "admintoken", "value", "secret"):
            token = keys.get(key)
            if isinstance(token, str) and token.strip():
                return token.strip()
    return None


def generated_notice(settings: Settings) -> str:
    """What to print when a token was just generated: where it is and how to show it, never the
    token itself (a server's output usually ends up in a log)."""
    data_dir = shlex.quote(str(settings.data_dir.resolve()))
    return (
        f"SproutGate generated an admin token and saved it to {admin_file(settings).resolve()} "
        f"(mode 0600). Show it with: SPROUTGATE_DATA_DIR={data_dir} sproutgate admin-token"
    )


def load_or_create(settings: Settings) -> tuple[str, bool]:
    """The admin token and whether it was generated just now (then say where, see
    ``generated_notice``)."""
    if settings.admin_token:
        return settings.admin_token, False
    path = admin_file(settings)
    token = read_admin_file(path)
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    # Several processes may start at once on one data dir: the file appears complete or not at
    # all (written aside, then linked into place), the first one wins, the others use its token.
    if write_new_file(path, json.dumps({"token": token}).encode()):
        return token, True
    existing = read_admin_file(path)
    if existing:
        return existing, False
    _write_private(path, {"token": token})
    return token, True


def rotate(settings: Settings) -> str:
    token = secrets.token_urlsafe(32)
    _write_private(admin_file(settings), {"token": token})
    return token


def adopt(settings: Settings, token: str) -> None:
    """Make ``token`` this installation's admin token (``import-sproutgate``); running servers
    pick it up like a rotation."""
    _write_private(admin_file(settings), {"token": token})


def write_private_json(path: Path, payload: dict[str, object]) -> None:
    """Write JSON atomically into a file only the owner can read (mode 0600)."""
    _write_private(path, payload)  # type: ignore[arg-type]


class AdminTokenGuard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._token, self.generated = load_or_create(settings)
        self._path = admin_file(settings)
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return self._path.stat().st_mtime
        except OSError:
            return 0.0

    def _refresh(self) -> None:
        if not self.settings.admin_token:
            # `sproutgate admin-token --rotate` rewrites the file; pick that up without a restart.
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                self._token = read_admin_file(self._path) or self._token

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        self._refresh()
        return hmac.compare_digest(presented.encode(), self._token.encode())

    @property
    def token(self) -> str:
        """The current token (re-read after a rotation)."""
        self._refresh()
        return self._token
