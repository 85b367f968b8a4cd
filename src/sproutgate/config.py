"""One settings object for the whole process.

Values come, highest precedence first, from ``SPROUTGATE_*`` environment variables, then the
SproutGate-compatible JSON files under ``<data_dir>/config/`` (``auth.json``, ``email.json``),
then the defaults below. The object is built once (``Settings.load()``) and handed to
``create_app``; nothing reads the environment after that.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPROUTGATE_", extra="ignore", validate_default=True)

    # Where things live
    data_dir: Path = Path("./data")
    database_url: str = ""  # default: sqlite+aiosqlite:///<data_dir>/sproutgate.db
    redis_url: str = ""
    public_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080

    # Mail
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["tls", "starttls", "none"] = "starttls"
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "SproutGate <no-reply@localhost>"
    mail_retry_base_seconds: float = 2.0
    mail_retry_max_seconds: float = 300.0
    mail_max_attempts: int = 12
    mail_poll_seconds: float = 2.0

    # HTTP edge
    cors_origins: CsvList = Field(default_factory=list)
    allowed_redirects: CsvList = Field(default_factory=list)
    trusted_proxies: CsvList = Field(default_factory=list)
    max_body_bytes: int = 64 * 1024

    # Tokens and sessions
    issuer: str = "sproutgate"
    access_token_ttl_seconds: int = 3600
    gate_token_ttl_seconds: int = 7 * 24 * 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    refresh_grace_seconds: float = 10.0
    recent_auth_seconds: int = 600
    admin_token: str = ""

    # Codes
    code_ttl_seconds: int = 600
    code_max_attempts: int = 5
    pending_signup_ttl_seconds: int = 24 * 3600

    # Passwords
    password_min_length: int = 6
    password_max_length: int = 128
    password_check_common: bool = True
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1

    # Rate limits (limits library notation: "N/period", several separated by ';' where allowed)
    rate_limits_enabled: bool = True
    limit_code_mail_per_address: str = "1/60 seconds;10/hour"
    limit_code_requests_per_ip: str = "30/hour"
    limit_verify_per_ip: str = "30/5 minutes"
    limit_login_fail_account_ip: str = "10/15 minutes"
    limit_login_fail_account: str = "100/hour"
    limit_login_fail_ip: str = "100/15 minutes"
    limit_refresh_per_ip: str = "150/5 minutes"
    limit_search_per_user: str = "60/minute"
    limit_admin_auth_fail_per_ip: str = "20/15 minutes"
    limit_agent_runs_per_user: str = "20/minute"

    # Housekeeping
    purge_interval_seconds: float = 300.0
    auto_migrate: bool = True

    # Agent
    agent_model: str = ""
    agent_base_url: str = ""
    agent_api_key: str = ""
    agent_system_prompt: str = ""
    agent_timeout_seconds: float = 60.0
    agent_history_messages: int = 60

    # Development
    dev_mailbox: bool | None = None  # None: on exactly when no SMTP host is configured

    _split = field_validator("cors_origins", "allowed_redirects", "trusted_proxies", mode="before")(
        _split_csv
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sproutgate.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def dev_mailbox_enabled(self) -> bool:
        if self.dev_mailbox is not None:
            return self.dev_mailbox and not self.smtp_host
        return not self.smtp_host

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "config"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings: env vars and explicit overrides win over data/config/*.json."""
        probe = cls(**overrides)
        file_values = read_config_files(probe.data_dir / "config")
        explicit = set(probe.model_fields_set) | set(overrides)
        merged = {k: v for k, v in file_values.items() if k not in explicit}
        if not merged:
            return probe
        return cls(**{**merged, **overrides})


# data/config/auth.json and email.json use SproutGate's own (camelCase) keys; map them here.
_AUTH_KEYS = {
    "issuer": "issuer",
    "tokenTtlHours": ("gate_token_ttl_seconds", 3600),
    "tokenTtlSeconds": ("gate_token_ttl_seconds", 1),
    "expiresHours": ("gate_token_ttl_seconds", 3600),
    "ttlHours": ("gate_token_ttl_seconds", 3600),
}
_EMAIL_KEYS = {
    "host": "smtp_host",
    "smtpHost": "smtp_host",
    "port": "smtp_port",
    "smtpPort": "smtp_port",
    "username": "smtp_username",
    "user": "smtp_username",
    "password": "smtp_password",
    "from": "mail_from",
    "fromAddress": "mail_from",
    "security": "smtp_security",
}


def read_config_files(config_dir: Path) -> dict[str, Any]:
    """Read SproutGate's JSON config files; unknown keys are ignored, bad files logged."""
    values: dict[str, Any] = {}
    for name, mapping in (("auth.json", _AUTH_KEYS), ("email.json", _EMAIL_KEYS)):
        path = config_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            continue
        if not isinstance(data, dict):
            continue
        for key, target in mapping.items():
            if key not in data or data[key] in (None, ""):
                continue
            if isinstance(target, tuple):
                field, factor = target
                try:
                    values[field] = int(float(data[key]) * factor)
                except (TypeError, ValueError):
                    continue
            else:
                values[target] = data[key]
        if name == "email.json":
            if "useTLS" in data or "tls" in data:
                tls = data.get("useTLS", data.get("tls"))
                values.setdefault("smtp_security", "tls" if tls else "starttls")
            if "encryption" in data and data["encryption"] in ("tls", "starttls", "none"):
                values["smtp_security"] = data["encryption"]
    return values
