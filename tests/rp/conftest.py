"""Fixtures of the relying-party tests: one SproutGate (SQLite) for the whole run, and per module
headless Chromium, Apache with mod_auth_openidc and the oidc-client-ts single-page app, each
registered as a client with ``sproutgate clients create``. The helpers are in rp_support.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright
from rp_support import (
    APACHE_SCOPES,
    ApacheRp,
    Provider,
    SpaSite,
    ensure_apache,
    ensure_oidc_client_ts,
    start_provider,
)

# Chromium is found or installed as for the hosted pages' browser tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_support import CHROMIUM_ARGS, ensure_chromium  # noqa: E402


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = start_provider(tmp_path_factory.mktemp("rp-data"))
    try:
        yield started
    finally:
        started.http.close()
        started.server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as pw:
        try:
            instance = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a browser that cannot start fails the run
            pytest.fail(f"could not launch Chromium ({executable or 'playwright build'}): {exc}")
        yield instance
        instance.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test; a script error on any page fails it."""
    ctx = browser.new_context(locale="en-US")
    ctx.set_default_timeout(15_000)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    yield ctx
    ctx.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def apache(provider: Provider) -> Iterator[ApacheRp]:
    """Apache protecting /app with mod_auth_openidc, a confidential first-party client that
    takes back-channel logout tokens at mod_auth_openidc's own URI for them."""
    ensure_apache()
    rp = ApacheRp(issuer=provider.issuer)
    created = provider.create_client(
        "Apache family app",
        [rp.redirect_uri],
        "--first-party",
        "--post-logout-redirect-uri",
        rp.logged_out_url,
        "--backchannel-logout-uri",
        rp.backchannel_logout_uri,
        *APACHE_SCOPES,
    )
    rp.client_id, rp.client_secret = created["client_id"], created["client_secret"]
    try:
        rp.start()
    except Exception:
        rp.close()
        raise
    yield rp
    rp.close()


@pytest.fixture(scope="module")
def spa(provider: Provider) -> Iterator[SpaSite]:
    """The oidc-client-ts single-page app, a public first-party client."""
    app = SpaSite(issuer=provider.issuer, bundle=ensure_oidc_client_ts())
    created = provider.create_client(
        "Single-page family app",
        [app.redirect_uri],
        "--public",
        "--first-party",
        "--post-logout-redirect-uri",
        app.redirect_uri,
        *("--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access"),
    )
    assert "client_secret" not in created or created["client_secret"] is None, created
    app.client_id = created["client_id"]
    try:
        app.start()
    except Exception:
        app.close()
        raise
    yield app
    app.close()
