"""Relying parties that nobody on this team wrote, run by the tests against a real SproutGate:
Apache with mod_auth_openidc (Debian packages) and a single-page app built on oidc-client-ts
(npm), both served on loopback by processes the tests start and stop.

Sites: SproutGate (the provider) is reached as ``http://localhost:PORT`` and the apps as
``http://127.0.0.1:PORT``: two different sites for the browser, so its cookie rules (SameSite)
apply as between an app and the provider on the internet, while both ends stay on loopback
(redirect URIs on 127.0.0.1 are what RFC 8252 §7.3 lets a client register with any port)."""

from __future__ import annotations

import getpass
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from support.debian import ensure_debian_packages
from support.locks import machine_lock
from support.servers import ServerProcess, free_port

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "rp-test-admin-token-5d1e7b"
PASSWORD = "Sprout#2026pw"
APACHE = "/usr/sbin/apache2"
MOD_AUTH_OPENIDC = "/usr/lib/apache2/modules/mod_auth_openidc.so"
# What tests/rp/apache/sproutgate-app.conf asks for (OIDCScope), as `clients create` options.
APACHE_SCOPES = ("--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "sproutgate")
# npm packages are installed once per machine here (`make test` leaves the working tree as it
# was), from tests/rp/spa/package-lock.json, so the versions and their hashes are pinned.
NPM_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sproutgate-tests" / "spa"


# -- the provider -----------------------------------------------------------------------------
@dataclass
class Provider:
    """A running ``sproutgate serve`` (SQLite) and what the tests do to it besides browsing."""

    server: ServerProcess
    env: dict[str, str | None]
    http: httpx.Client
    issuer: str

    def sproutgate(self, *args: str) -> str:
        """Run the ``sproutgate`` CLI against this provider's database; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "sproutgate", *args],
            env=self.server.full_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"sproutgate {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def create_client(self, name: str, redirect_uris: list[str], *options: str) -> dict[str, Any]:
        """``sproutgate clients create --name NAME --redirect-uri URI... OPTIONS``: its JSON."""
        argv = ["clients", "create", "--name", name]
        for uri in redirect_uris:
            argv += ["--redirect-uri", uri]
        created = json.loads(self.sproutgate(*argv, *options))
        assert created["client_id"], created
        return created

    def create_user(self, **fields: Any) -> dict[str, Any]:
        """A fresh user through the admin API; returned with its password."""
        tag = uuid.uuid4().hex[:8]
        body = {
            "account": f"u{tag}",
            "email": f"u{tag}@example.com",
            "password": PASSWORD,
            "username": f"User {tag[:4]}",
            **fields,
        }
        r = self.http.post("/api/admin/users", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
        assert r.status_code == 201, r.text
        return {**r.json()["user"], "password": body["password"]}


def start_provider(data_dir: Path) -> Provider:
    """SproutGate on a free port, its issuer ``http://localhost:PORT``. No
    SPROUTGATE_CORS_ORIGINS: the single-page app relies on the OIDC endpoints' own CORS."""
    port = free_port()
    issuer = f"http://localhost:{port}"
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(data_dir),
        "SPROUTGATE_PUBLIC_URL": issuer,
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SPROUTGATE_CORS_ORIGINS": None,
        "SPROUTGATE_MAIL_POLL_SECONDS": "0.2",
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_DEV_MAILBOX": None,
        "SPROUTGATE_TRUSTED_PROXIES": None,
        "SPROUTGATE_ALLOWED_REDIRECTS": None,
    }
    server = ServerProcess(env, port=port, name="sproutgate-rp")
    server.start()
    return Provider(
        server=server, env=env, http=httpx.Client(base_url=server.base_url, timeout=20), issuer=issuer
    )


def sign_in_at_sproutgate(page: Page, identifier: str, password: str = PASSWORD) -> None:
    """On SproutGate's hosted sign-in page (where an app sent the browser): sign in."""
    page.wait_for_selector("#f-identifier")
    page.locator("#f-identifier").fill(identifier)
    page.locator("#f-password").fill(password)
    page.locator("form[action^='/login'] button[type=submit]").click()


# -- Apache with mod_auth_openidc -------------------------------------------------------------
def ensure_apache() -> None:
    """apache2 and mod_auth_openidc, installed with apt-get when missing."""
    ensure_debian_packages({APACHE: "apache2", MOD_AUTH_OPENIDC: "libapache2-mod-auth-openidc"})


def _apache_user() -> tuple[str, str]:
    """The user and group Apache's children run as: www-data when started as root (Apache
    refuses root), else whoever runs the tests (apache2 then ignores User and Group)."""
    if os.geteuid() == 0:
        for name in ("www-data", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            import grp

            return name, grp.getgrgid(entry.pw_gid).gr_name
    return getpass.getuser(), "#" + str(os.getegid())


CLAIMS_CGI = """#!/bin/sh
# The protected app: what mod_auth_openidc tells it about the person, one claim a line.
printf 'Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
env | grep '^OIDC_CLAIM_' | sort
"""


@dataclass
class ApacheRp:
    """Apache (tests/rp/apache/httpd.conf + sproutgate-app.conf) protecting ``/app`` with
    mod_auth_openidc, as a confidential client of ``issuer``."""

    issuer: str
    client_id: str = ""
    client_secret: str = ""
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sproutgate-apache-")))
    server: ServerProcess | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/app/redirect_uri"

    @property
    def backchannel_logout_uri(self) -> str:
        """Where mod_auth_openidc takes logout tokens (OIDC Back-Channel Logout 1.0 §2.5)."""
        return f"{self.redirect_uri}?logout=backchannel"

    @property
    def logged_out_url(self) -> str:
        return f"{self.origin}/loggedout.html"

    def start(self) -> None:
        # The children (www-data when root) read the pages and run the CGI: a directory of its
        # own that they can reach, unlike pytest's private temporary directories.
        self.root.chmod(0o755)
        (self.root / "htdocs").mkdir(mode=0o755)
        (self.root / "cgi").mkdir(mode=0o755)
        (self.root / "htdocs" / "health.txt").write_text("ok\n")
        (self.root / "htdocs" / "loggedout.html").write_text(
            "<!doctype html><title>Signed out</title><h1>Signed out of the app</h1>\n"
        )
        cgi = self.root / "cgi" / "claims"
        cgi.write_text(CLAIMS_CGI)
        cgi.chmod(0o755)
        for name in ("httpd.conf", "sproutgate-app.conf"):
            shutil.copy(HERE / "apache" / name, self.root / name)
        user, group = _apache_user()
        env: dict[str, str | None] = {
            "RP_ROOT": str(self.root),
            "RP_PORT": str(self.port),
            "RP_USER": user,
            "RP_GROUP": group,
            "RP_ORIGIN": self.origin,
            "SPROUTGATE_ISSUER": self.issuer,
            "RP_CLIENT_ID": self.client_id,
            "RP_CLIENT_SECRET": self.client_secret,
            "RP_CRYPTO_PASSPHRASE": secrets.token_urlsafe(32),
        }
        argv = [APACHE, "-f", str(self.root / "httpd.conf"), "-DFOREGROUND"]
        self.server = ServerProcess(
            env, port=self.port, argv=argv, health_path="/health.txt", name="apache-rp", startup_timeout=30
        )
        self.server.start()

    def access_log(self) -> str:
        path = self.root / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else "<no error log>"

    def close(self) -> None:
        if self.server is not None:
            self.server.close(remove_log=True)
        shutil.rmtree(self.root, ignore_errors=True)


def claims_on(page: Page) -> dict[str, str]:
    """The claims the protected CGI page lists (``OIDC_CLAIM_name=value`` lines)."""
    found: dict[str, str] = {}
    for line in page.inner_text("body").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("OIDC_CLAIM_"):
            found[name.removeprefix("OIDC_CLAIM_")] = value
        elif sep and name == "REMOTE_USER":
            found["REMOTE_USER"] = value
    return found


# -- the single-page app (oidc-client-ts) ------------------------------------------------------
def ensure_oidc_client_ts() -> Path:
    """The browser bundle of oidc-client-ts, installed with ``npm ci`` from
    tests/rp/spa/package-lock.json into a cache outside the working tree on first use."""
    # One worker installs while the others wait (test_rp_spa.py and test_rp_sso.py both need it,
    # and `npm ci` starts by removing node_modules).
    with machine_lock("npm-spa"):
        return _install_oidc_client_ts()


def _install_oidc_client_ts() -> Path:
    bundle = NPM_CACHE / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js"
    lock = (HERE / "spa" / "package-lock.json").read_text()
    installed = NPM_CACHE / "package-lock.json"
    if bundle.exists() and installed.exists() and installed.read_text() == lock:
        return bundle
    ensure_debian_packages({"npm": "npm"})
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / "spa" / name, NPM_CACHE / name)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=NPM_CACHE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        if re.search(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network", tail, re.I):
            pytest.skip(f"`npm ci` (oidc-client-ts) cannot reach the npm registry: {tail}")
        pytest.fail(f"`npm ci` of tests/rp/spa failed: {tail}")
    assert bundle.exists(), f"npm ci did not provide {bundle}"
    return bundle


@dataclass
class SpaSite:
    """tests/rp/spa served as static files on loopback (Python's http.server), with the
    oidc-client-ts bundle and a config.js naming the provider and the client."""

    issuer: str
    bundle: Path
    client_id: str = ""
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sproutgate-spa-")))
    server: ServerProcess | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/"

    def start(self) -> None:
        for name in ("index.html", "app.js"):
            shutil.copy(HERE / "spa" / name, self.root / name)
        shutil.copy(self.bundle, self.root / "oidc-client-ts.min.js")
        config = {"authority": self.issuer, "client_id": self.client_id}
        (self.root / "config.js").write_text(f"window.SPA_CONFIG = {json.dumps(config)};\n")
        argv = [
            sys.executable,
            "-m",
            "http.server",
            "{port}",
            "--bind",
            "{host}",
            "--directory",
            str(self.root),
        ]
        self.server = ServerProcess({}, port=self.port, argv=argv, health_path="/index.html", name="spa")
        self.server.start()

    def close(self) -> None:
        if self.server is not None:
            self.server.close(remove_log=True)
        shutil.rmtree(self.root, ignore_errors=True)


TOKENS = """() => window.spa.userManager.getUser().then(u => u && {
    access_token: u.access_token, refresh_token: u.refresh_token, id_token: u.id_token,
    scope: u.scope, profile: u.profile})"""


def tokens(page: Page) -> dict[str, Any]:
    """What the single-page app holds: its tokens, granted scope and ID token claims."""
    found = page.evaluate(TOKENS)
    assert found, "the app holds no user"
    return found


def renewed_tokens(page: Page, old: dict[str, Any], timeout_seconds: float = 15.0) -> dict[str, Any]:
    """What the app holds once it has stored tokens other than ``old`` (after a renewal).

    Polled from here: Playwright's ``wait_for_function`` does not await a promise (the promise
    object itself is truthy), so a predicate on ``getUser()`` would not wait at all."""
    deadline = time.monotonic() + timeout_seconds
    while (held := tokens(page))["access_token"] == old["access_token"]:
        assert time.monotonic() < deadline, "the app never stored renewed tokens"
        page.wait_for_timeout(50)
    return held


def wait_state(page: Page, state: str) -> None:
    """Wait until the app shows ``state`` (signed-in, signed-out); its error fails the test."""
    page.wait_for_selector(f"body[data-state={state}], body[data-state=error]")
    error = page.locator("#error").inner_text()
    assert not error, error
    assert page.get_attribute("body", "data-state") == state
