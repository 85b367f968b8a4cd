"""Helpers for the browser tests of the hosted pages.

The browser: Debian's /usr/bin/chromium; when it is missing the set-up installs it with apt-get
(running as root) or runs ``playwright install chromium``. A browser that still cannot be found
fails the run, never skips it."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from support.debian import apt_install as _apt_install
from support.fake_openai import FakeOpenAI
from support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
# Screenshots land in a scratch directory, so that `make test` leaves the working tree as it
# was; `make screenshots` (SPROUTGATE_SCREENSHOTS_DIR=docs/screenshots) refreshes the docs' copies.
SCREENSHOTS = Path(
    os.environ.get("SPROUTGATE_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "sproutgate-screenshots"
)
if not SCREENSHOTS.is_absolute():
    SCREENSHOTS = ROOT / SCREENSHOTS
ADMIN_TOKEN = "web-test-admin-token-3f9c2a"
PASSWORD = "Sprout#2026pw"
REBOUND_NAME = "rebound.attacker.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A name of the attacker's that resolves to this machine, as after DNS rebinding.
    f"--host-resolver-rules=MAP {REBOUND_NAME} 127.0.0.1",
]
_ips = itertools.count(1)
# The wait of every `expect(...)` assertion (Playwright's default is 5 s), as long as the pages'
# own default wait below: on the 2-core CI machine, three workers, their servers and Chromium share
# the cores, and a click that signs in (a hash, a redirect, a page) can take seconds.
EXPECT_TIMEOUT_MS = 10_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# -- the browser ------------------------------------------------------------------------------
def _system_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_cjk_font() -> None:
    """Chinese screenshots need a CJK font; best effort, it only affects how they look."""
    if not shutil.which("fc-list") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip()
    if not found:
        _apt_install("fonts-wqy-microhei")


def ensure_chromium() -> str | None:
    """The Chromium executable to use (None: Playwright's own build)."""
    path = _system_chromium()
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install("chromium")
        path = _system_chromium()
        if path:
            return path
        pytest.fail("Chromium is missing and `apt-get install -y chromium` did not provide /usr/bin/chromium")
    result = subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"Chromium is missing and `playwright install chromium` failed:\n{result.stderr[-2000:]}")
    return None


# -- the model and the server -----------------------------------------------------------------


@dataclass
class Site:
    """The running server and what the tests need to drive it besides the browser."""

    server: ServerProcess
    http: httpx.Client
    llm: FakeOpenAI
    app_origin: str  # an allow-listed redirect target on another origin

    @property
    def url(self) -> str:
        return self.server.base_url

    def create_user(self, *, role: str = "user", password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
        """A fresh user through the admin API; returns it with its password."""
        tag = uuid.uuid4().hex[:8]
        body = {
            "account": f"u{tag}",
            "email": f"u{tag}@example.com",
            "password": password,
            "username": f"User {tag[:4]}",
            "role": role,
            **fields,
        }
        r = self.http.post("/api/admin/users", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
        assert r.status_code == 201, r.text
        return {**r.json()["user"], "password": password}

    def user(self, account: str) -> dict[str, Any] | None:
        r = self.http.get("/api/admin/users", params={"q": account}, headers={"X-Admin-Token": ADMIN_TOKEN})
        r.raise_for_status()
        return next((u for u in r.json()["users"] if u["account"] == account), None)

    def code_for(self, email: str, timeout: float = 10.0) -> str:
        """The 6-digit code of the newest mail to ``email`` in the dev mailbox (JSON)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.http.get("/dev/mailbox", params={"to": email}).json()
            for message in messages:
                found = re.search(r"\b(\d{6})\b", message["subject"])
                if found:
                    return found.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no code mailed to {email}: {messages}")
            time.sleep(0.1)


# -- pages ------------------------------------------------------------------------------------
@dataclass
class Browsing:
    """Opens browser contexts (one per simulated device) and records page problems."""

    browser: Browser
    site: Site
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Requests a page made to another origin than its own, by request; one the browser refused
    # (the CSP blocked it: nothing left the machine) is taken off again.
    outside: dict[Request, str] = field(default_factory=dict)

    def page(
        self,
        lang: str = "en-US",
        javascript: bool = True,
        remote: bool = True,
        viewport: tuple[int, int] = (1280, 860),
        allowed_refusals: tuple[str, ...] = (),
    ) -> Page:
        """A page in a new browser context. ``remote`` devices appear to come from their own
        address through the (trusted) local proxy; the dev mailbox only opens to local ones.
        Every page is watched: a CSP refusal in the console (unless it contains one of
        ``allowed_refusals``), a script error or a request to another origin than the page's
        own fails the test."""
        ip = next(_ips)
        forwarded = {"X-Forwarded-For": f"10.77.{ip // 250}.{ip % 250 + 1}"} if remote else {}
        context = self.browser.new_context(
            base_url=self.site.url,
            locale=lang,
            viewport={"width": viewport[0], "height": viewport[1]},
            java_script_enabled=javascript,
            extra_http_headers=forwarded,
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: self._console(message, allowed_refusals))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("request", self._request)
        page.on("requestfailed", self._request_failed)
        return page

    def _console(self, message: Any, allowed: tuple[str, ...]) -> None:
        if message.type != "error" or any(text in message.text for text in allowed):
            return
        if "Content Security Policy" in message.text or "Refused" in message.text:
            self.problems.append(f"console: {message.text}")

    def _request(self, request: Request) -> None:
        # Going to another site is a navigation (a redirect to an allowed app); what a page
        # loads or calls by itself must come from its own origin.
        if request.is_navigation_request() or urlsplit(request.url).scheme in ("data", "blob"):
            return
        try:
            page_url = request.frame.url
        except Exception:  # noqa: BLE001 - a worker's request has no frame: judge by the site
            page_url = self.site.url
        if _origin(request.url) != _origin(page_url):
            self.outside[request] = f"{page_url} requested {request.url}"

    def _request_failed(self, request: Request) -> None:
        if "csp" in (request.failure or "").lower():
            self.outside.pop(request, None)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.problems.extend(f"request to another origin: {what}" for what in self.outside.values())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def outside_viewport(page: Page) -> list[str]:
    """What makes ``page`` wider than its window: the page's own width when it scrolls
    sideways, and every visible control (link, button, field) that is not wholly on screen."""
    return page.evaluate(
        """() => {
            const width = window.innerWidth;
            const found = [];
            const total = document.documentElement.scrollWidth;
            if (total > width) found.push(`the page is ${total}px wide in a ${width}px window`);
            const controls = document.querySelectorAll("a, button, input, select, textarea, summary");
            for (const el of controls) {
                if (el.closest(".visually-hidden") || el.classList.contains("skip-link")) continue;
                const box = el.getBoundingClientRect();
                if (box.width < 2 || box.height < 2 || getComputedStyle(el).visibility === "hidden") continue;
                if (box.left < -0.5 || box.right > width + 0.5) {
                    const name = (el.innerText || el.value || el.name || el.id || "").trim().slice(0, 40);
                    const span = `${Math.round(box.left)}-${Math.round(box.right)}px`;
                    found.push(`${el.tagName.toLowerCase()} "${name}" spans ${span}`);
                }
            }
            return found;
        }"""
    )


def lines_of(page: Page, selector: str) -> dict[str, int]:
    """How many lines the text of each visible element matching ``selector`` takes."""
    return page.evaluate(
        """(selector) => {
            const out = {};
            for (const el of document.querySelectorAll(selector)) {
                if (!el.getClientRects().length) continue;
                const range = document.createRange();
                range.selectNodeContents(el);
                const rects = [...range.getClientRects()].filter(r => r.width > 0);
                out[el.innerText.trim()] = new Set(rects.map(r => Math.round(r.top))).size;
            }
            return out;
        }""",
        selector,
    )


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, identifier: str, password: str = PASSWORD, path: str = "/login") -> None:
    page.goto(path)
    page.get_by_label(re.compile("Account or email|账号或邮箱")).fill(identifier)
    page.locator("#f-password").fill(password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()
