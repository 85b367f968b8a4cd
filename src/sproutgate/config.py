"""One settings object for the whole process.

Values come, highest precedence first, from ``SPROUTGATE_*`` environment variables, then the
SproutGate-compatible JSON files under ``<data_dir>/config/`` (``auth.json``, ``email.json``),
then the defaults below. The object is built once (``Settings.load()``) and handed to
``create_app``; nothing reads the environment after that.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
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
    # Base URL of mailed links. Empty: the address this server is served on (host and port
    # below, as `sproutgate serve --host/--port` sets them); set it behind a proxy or a name.
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)

    # Mail
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["tls", "starttls", "none"] = "starttls"
    smtp_timeout_seconds: float = 10.0
    # Empty: "<product_name> <no-reply@localhost>".
    mail_from: str = ""
    # Mail texts (docs/deployment.md, mail templates): the product name every template shows,
    # and a directory of <lang>/<kind>.txt Jinja2 files searched before the shipped ones.
    product_name: str = Field(default="SproutGate", min_length=1, max_length=100)
    mail_templates_dir: Path | None = None
    mail_retry_base_seconds: float = 2.0
    mail_retry_max_seconds: float = 300.0
    mail_max_attempts: int = 12
    mail_poll_seconds: float = 2.0

    # Back-channel logout (OpenID Connect Back-Channel Logout 1.0; domain/backchannel): one POST
    # per client and ended session, retried with backoff like mail.
    backchannel_logout_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    backchannel_logout_retry_base_seconds: float = Field(default=2.0, gt=0)
    backchannel_logout_retry_max_seconds: float = Field(default=300.0, gt=0)
    backchannel_logout_max_attempts: int = Field(default=10, ge=1)

    # HTTP edge
    cors_origins: CsvList = Field(default_factory=list)
    allowed_redirects: CsvList = Field(default_factory=list)
    trusted_proxies: CsvList = Field(default_factory=list)
    max_body_bytes: int = 64 * 1024

    # Logging (to standard error; see infra/logs.py)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True

    # /metrics: loopback clients only, unless a token is set; then only with it (Bearer)
    metrics_token: str = ""

    # Tokens and sessions
    issuer: str = "sproutgate"
    access_token_ttl_seconds: int = 3600
    gate_token_ttl_seconds: int = 7 * 24 * 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    refresh_grace_seconds: float = Field(default=10.0, ge=0, le=10)  # a replay window: keep it short
    recent_auth_seconds: int = 600
    admin_token: str = ""
    web_session_ttl_seconds: int = 7 * 24 * 3600  # the hosted pages' session cookie
    # A session of any kind unused this long is refused at its next use (access and refresh)
    # and purged; domain/sessions/rules.py, docs/security.md "Sessions".
    session_idle_timeout_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    console_idle_timeout_seconds: int = Field(default=30 * 60, gt=0)  # admin console, unused this long
    # Second factors: how long the mfa_token of a password step may be traded for a session.
    mfa_token_ttl_seconds: int = Field(default=300, gt=0)

    # Codes
    code_ttl_seconds: int = 600
    code_max_attempts: int = 5
    pending_signup_ttl_seconds: int = 24 * 3600

    # Deleted accounts: their addresses and account name stay unavailable this long (0: free at
    # once); see domain/privacy and docs/security.md, "Deleting an account".
    deleted_account_hold_seconds: int = Field(default=30 * 24 * 3600, ge=0)

    # Passwords
    password_min_length: int = 6
    password_max_length: int = 128
    password_check_common: bool = True
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    # Hashes allowed to run at once in this process; 0: one per usable core (see infra/hasher.py).
    argon2_threads: int = Field(default=0, ge=0)

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
    # Wrong second-factor codes (authenticator or recovery codes), counted like wrong passwords.
    limit_mfa_fail_account_ip: str = "10/15 minutes"
    limit_mfa_fail_account: str = "20/hour"
    limit_mfa_fail_ip: str = "100/15 minutes"
    # Completed password resets per account that clear its account-wide count of wrong codes:
    # the owner's one reset lets their new device in; a mailbox reader resetting again and
    # again does not renew their guesses.
    limit_mfa_fail_resets_per_account: str = "1/hour"
    # Passkey ceremonies begun (each stores a challenge) per client address.
    limit_passkey_options_per_ip: str = "60/5 minutes"
    # The OpenID Connect token endpoint: per address for public clients and requests whose
    # client did not authenticate, per client for a confidential client that did (its one
    # backend address is not shared with everyone's budget); and failed client authentications
    # at the token, revocation and introspection endpoints, counted like failed sign-ins.
    limit_oidc_token_per_ip: str = "300/5 minutes"
    limit_oidc_token_per_client: str = "3000/5 minutes"
    limit_client_auth_fail_per_ip: str = "20/15 minutes"

    # Backing services. PostgreSQL: every process keeps up to pool_size + max_overflow connections.
    # The timeouts bound how long a request waits when a service is away (it then answers 503).
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: float = 3.0
    db_statement_timeout_seconds: float = 5.0
    redis_timeout_seconds: float = 1.0
    redis_retry_seconds: float = 2.0  # after a Redis failure, local limits for this long, then retry
    # SQLite: run the short database calls on the event loop (storage/sqlite_driver.py); false
    # uses plain aiosqlite through SQLAlchemy, as PostgreSQL uses asyncpg. See
    # docs/decisions/sqlite-inline-driver.md.
    sqlite_inline_driver: bool = True

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
    agent_sse_keepalive_seconds: float = Field(default=15.0, gt=0)  # SSE comment after this long idle

    # Development
    dev_mailbox: bool | None = None  # None: on exactly when no SMTP host is configured

    _split = field_validator("cors_origins", "allowed_redirects", "trusted_proxies", mode="before")(
        _split_csv
    )

    @field_validator("mail_templates_dir", mode="before")
    @classmethod
    def _no_templates_dir(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _sender_from_product(self) -> Settings:
        if not self.mail_from.strip():
            self.mail_from = f"{self.product_name} <no-reply@localhost>"
        return self

    @model_validator(mode="after")
    def _public_url_from_address(self) -> Settings:
        if not self.public_url.strip():
            self.public_url = served_url(self.host, self.port)
        return self

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
    def agent_configured(self) -> bool:
        """A model name, and either an endpoint (local servers need no key) or a key (OpenAI
        itself). Read by the agent and by the pages, which offer the assistant only then."""
        return bool(self.agent_model.strip()) and bool(
            self.agent_base_url.strip() or self.agent_api_key.strip()
        )

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


def served_url(host: str, port: int) -> str:
    """``http://host:port`` for a bind address; a wildcard address (all interfaces) is reached
    on this machine through loopback."""
    host = host.strip() or "127.0.0.1"
    if host in ("0.0.0.0", "*"):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# data/config/auth.json and email.json are SproutGate's files. Their exact key names were never
# documented, so keys are matched loosely: case, '_' and '-' are ignored ("tokenTTLHours",
# "token_ttl_hours" and "tokenttlhours" are one key), and one level of nesting ({"smtp": {...}})
# is flattened. docs/api-mapping.md lists what is understood; anything else (the old JWT
# secret, for one) is ignored, and a value that cannot be used is logged and skipped.
_ISSUER_KEYS = {"issuer", "iss", "jwtissuer", "tokenissuer"}
_TTL_WORDS = ("ttl", "expire", "expiry", "expiration", "lifetime", "duration")
_UNITS = (
    (("days", "day"), 86400),
    (("hours", "hour", "hrs", "hr"), 3600),
    (("minutes", "minute", "mins", "min"), 60),
    (("seconds", "second", "secs", "sec"), 1),
)
_EMAIL_KEYS = {
    "smtp_host": {"host", "smtphost", "server", "smtpserver", "hostname"},
    "smtp_port": {"port", "smtpport"},
    "smtp_username": {"username", "user", "smtpuser", "smtpusername", "login", "account"},
    "smtp_password": {"password", "pass", "smtppassword", "smtppass", "authcode", "authpassword"},
    "mail_from": {"from", "fromaddress", "fromaddr", "fromemail", "sender", "senderemail", "mailfrom"},
}
_EMAIL_ADDR_KEYS = {"addr", "address", "smtpaddr", "smtpaddress"}  # "host:port"
_EMAIL_NAME_KEYS = {"fromname", "sendername", "name", "displayname"}
_SECURITY_WORDS = {"tls": "tls", "ssl": "tls", "implicit": "tls", "starttls": "starttls", "none": "none"}


def _norm(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat.setdefault(_norm(str(inner)), inner_value)
        else:
            flat[_norm(str(key))] = value
    return flat


def parse_duration_seconds(value: Any, unit_seconds: int = 1) -> int | None:
    """Seconds from a number (in ``unit_seconds``) or a duration string such as "168h",
    "7d", "1h30m" or "3600" (seconds). None when it is not a positive duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value) * unit_seconds
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text) * unit_seconds
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", text)
            if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)|\s", "", text):
                return None
            factor = {"d": 86400, "h": 3600, "m": 60, "s": 1}
            seconds = sum(float(n) * factor[u] for n, u in parts)
    else:
        return None
    return int(seconds) if seconds >= 1 else None


def _ttl_target(key: str) -> tuple[str, int] | None:
    """(setting, unit seconds) for a token-lifetime key of auth.json, else None."""
    if not any(word in key for word in _TTL_WORDS):
        return None
    if "refresh" in key or "reset" in key:
        return None
    field = "code_ttl_seconds" if "code" in key or "verif" in key else "gate_token_ttl_seconds"
    for suffixes, factor in _UNITS:
        if key.endswith(suffixes):
            return field, factor
    return field, 1


def _auth_values(data: dict[str, Any], path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in _flatten(data).items():
        if value in (None, ""):
            continue
        if key in _ISSUER_KEYS:
            if isinstance(value, str):
                values["issuer"] = value
            continue
        target = _ttl_target(key)
        if target is None:
            continue
        seconds = parse_duration_seconds(value, target[1])
        if seconds is None:
            log.warning("ignoring %s in %s: not a duration", key, path)
        else:
            values[target[0]] = seconds
    return values


def _email_values(data: dict[str, Any], path: Path) -> dict[str, Any]:
    flat = _flatten(data)
    if flat.get("enabled") is False or flat.get("enable") is False:
        log.info("%s says mail is disabled; not using it", path)
        return {}
    values: dict[str, Any] = {}
    for key, value in flat.items():
        if value in (None, ""):
            continue
        for field, aliases in _EMAIL_KEYS.items():
            if key in aliases:
                values[field] = value
        if key in _EMAIL_ADDR_KEYS and isinstance(value, str):
            host, _, port = value.rpartition(":")
            if host and port.isdigit():
                values.setdefault("smtp_host", host)
                values.setdefault("smtp_port", int(port))
            else:
                values.setdefault("smtp_host", value)
    if "smtp_port" in values:
        try:
            port_number = int(values["smtp_port"])
        except (TypeError, ValueError):
            port_number = 0
        if 0 < port_number < 65536:
            values["smtp_port"] = port_number
        else:
            log.warning("ignoring port %r in %s", values.pop("smtp_port"), path)
    for field in ("smtp_host", "smtp_username", "smtp_password", "mail_from"):
        if field in values and not isinstance(values[field], str):
            values[field] = str(values[field])
    name = next((flat[k] for k in _EMAIL_NAME_KEYS if isinstance(flat.get(k), str) and flat[k]), None)
    if name and "mail_from" in values and "<" not in values["mail_from"]:
        values["mail_from"] = f"{name} <{values['mail_from']}>"
    # Security: an explicit word wins, then booleans, then the port's convention.
    security = None
    for key in ("security", "encryption", "smtpsecurity", "tlsmode", "secure"):
        word = flat.get(key)
        if isinstance(word, str) and word.strip().lower() in _SECURITY_WORDS:
            security = _SECURITY_WORDS[word.strip().lower()]
            break
    if security is None:
        for key in ("usetls", "tls", "ssl", "usessl", "secure", "implicittls"):
            if isinstance(flat.get(key), bool):
                security = "tls" if flat[key] else None
                break
    if security is None:
        for key in ("starttls", "usestarttls"):
            if isinstance(flat.get(key), bool):
                security = "starttls" if flat[key] else "none"
                break
    if security is None and "smtp_port" in values:
        security = {465: "tls", 25: "none"}.get(values["smtp_port"])
    if security is not None:
        values["smtp_security"] = security
    return values


# file name -> reader of its settings (JSON object, path for messages) -> {Settings field: value}
CONFIG_FILES = {"auth.json": _auth_values, "email.json": _email_values}


def read_config_files(config_dir: Path) -> dict[str, Any]:
    """Settings from SproutGate's ``auth.json`` and ``email.json`` in ``config_dir``, as field
    names of Settings. Missing files are fine; unreadable ones and unusable values are logged
    and skipped, never fatal."""
    values: dict[str, Any] = {}
    for name, reader in CONFIG_FILES.items():
        path = config_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            continue
        if not isinstance(data, dict):
            log.warning("ignoring %s: not a JSON object", path)
            continue
        values.update(reader(data, path))
    return values
