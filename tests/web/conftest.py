"""Browser tests of the hosted pages: headless Chromium (Playwright) against a real
``sproutgate serve`` process whose agent talks to the scripted model server. The fixtures are
here; the helpers they use are in web_support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from web_support import ADMIN_TOKEN, CHROMIUM_ARGS, Browsing, Site, ensure_chromium, ensure_cjk_font

from support.fake_openai import FakeOpenAI
from support.servers import ServerProcess, free_port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: the sync Playwright driver runs an event loop on this thread while it is open;
    # closing it after the browser module lets async tests elsewhere in the run use theirs.
    executable = ensure_chromium()
    ensure_cjk_font()
    with sync_playwright() as pw:
        try:
            instance = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a browser that cannot start fails the run
            pytest.fail(f"could not launch Chromium ({executable or 'playwright build'}): {exc}")
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-web-test") as fake:
        yield fake


@pytest.fixture(scope="session")
def site(llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    app_origin = f"http://localhost:{port}"
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(tmp_path_factory.mktemp("web-data")),
        "SPROUTGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SPROUTGATE_ALLOWED_REDIRECTS": f"{app_origin}/app/*",
        "SPROUTGATE_MAIL_POLL_SECONDS": "0.2",
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_DEV_MAILBOX": None,
        **llm.env(),
    }
    server = ServerProcess(env, port=port, name="sproutgate-web")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=20) as http:
            yield Site(server=server, http=http, llm=llm, app_origin=app_origin)
    finally:
        server.close()


@pytest.fixture
def browsing(browser: Browser, site: Site) -> Iterator[Browsing]:
    b = Browsing(browser, site)
    site.llm.reset()
    yield b
    b.close()
    assert not b.problems, b.problems


@pytest.fixture
def new_page(browsing: Browsing) -> Callable[..., Page]:
    return browsing.page
