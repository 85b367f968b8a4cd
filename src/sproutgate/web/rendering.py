"""Jinja2 environment, static asset URLs and safe Markdown for the pages."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import nh3
from jinja2 import BytecodeCache, Environment, FileSystemLoader, select_autoescape
from jinja2.bccache import Bucket
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# Bios are user-written Markdown shown to others: raw HTML is off in the parser, images are off
# (they would let a bio track its readers), and nh3 sanitises whatever HTML results.
_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).disable("image")
_BIO_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip


def render_markdown(text: str | None) -> Markup:
    if not text:
        return Markup("")
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=_BIO_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow ugc",
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


_URL_RE = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str | None) -> Markup:
    """Plain text with its http(s) URLs as links (the dev mailbox's mail bodies)."""
    escaped = str(escape(text or ""))
    return Markup(  # noqa: S704 - built from escaped text only
        _URL_RE.sub(lambda m: f'<a href="{m.group(0)}" rel="noopener noreferrer">{m.group(0)}</a>', escaped)
    )


@lru_cache(maxsize=64)
def _asset_version(name: str) -> str:
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    return f"/static/{name}?v={_asset_version(name)}"


def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe_user_agent(ua: str | None) -> str:
    """A short 'Browser on OS' label for the sessions list."""
    if not ua:
        return "—"
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Safari/", "Safari"),
                ("curl/", "curl"),
                ("python-httpx", "httpx"),
            )
            if key in ua
        ),
        None,
    )
    system = next(
        (
            name
            for key, name in (
                ("Android", "Android"),
                ("iPhone", "iOS"),
                ("iPad", "iPadOS"),
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("Linux", "Linux"),
            )
            if key in ua
        ),
        None,
    )
    if browser and system:
        return f"{browser} · {system}"
    return browser or system or ua[:40]


def initial(name: str | None) -> str:
    name = (name or "?").strip()
    return name[:1].upper() if name else "?"


class _CompiledTemplates(BytecodeCache):
    """Compiled page templates kept in memory for the life of the process and shared by every
    environment ``make_environment`` makes (they all compile alike). A server makes one app and
    gains nothing; the test suite makes an app per test and so compiled every page it renders
    again for each (some tens of milliseconds). Jinja keys a template by name and file and
    checks a checksum of its source, so a changed template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_compiled_templates = _CompiledTemplates()


def make_environment() -> Environment:
    """The pages' Jinja2 environment: templates/ autoescaped, with the filters the pages use."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        bytecode_cache=_compiled_templates,
    )
    env.globals["static_url"] = static_url
    env.filters["markdown"] = render_markdown
    env.filters["linkify"] = linkify
    env.filters["when"] = format_time
    env.filters["iso"] = iso_time
    env.filters["device"] = describe_user_agent
    env.filters["initial"] = initial
    return env
