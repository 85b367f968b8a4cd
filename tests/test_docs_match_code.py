"""The reference parts of README.md and docs/*.md that can go stale silently are checked against
the code here: the configuration table (every setting, its name and default), the command-line
block and every `sproutgate ...` command any page names (the Typer tree), docs/api-mapping.md
(every route the app serves, and only those), every request (`METHOD /path`) README.md and
docs/*.md name, the rate-limit rule names of docs/deployment.md's metrics table and the key
files of its backups table. Prose is not checked; what a reader copies is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from sproutgate.cli import app as cli_app
from sproutgate.config import Settings
from sproutgate.infra.ratelimit import RULES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
API_MAPPING = (ROOT / "docs" / "api-mapping.md").read_text()
DEPLOYMENT = (ROOT / "docs" / "deployment.md").read_text()
FIELDS = Settings.model_fields


# -- README: the configuration table ------------------------------------------------------------


def _table_rows() -> list[tuple[list[str], str]]:
    """(setting field names, default cell) per row of README's configuration table. A cell may
    name several variables, later ones abbreviated by their tail (`SPROUTGATE_DB_POOL_SIZE` /
    `_MAX_OVERFLOW`): the tail replaces the end of the previous full name."""
    rows = []
    for line in README.splitlines():
        if not line.startswith("| `SPROUTGATE_"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names: list[str] = []
        full = ""
        for token in re.findall(r"`(_?[A-Z0-9_]+)`", cells[0]):
            if token.startswith("SPROUTGATE_"):
                full = token.removeprefix("SPROUTGATE_")
                names.append(full.lower())
                continue
            parts, tail = full.split("_"), token[1:].split("_")
            guesses = ["_".join(parts[:cut] + tail).lower() for cut in range(len(parts))]
            names.append(next((g for g in guesses if g in FIELDS), f"?{token}"))
        rows.append((names, cells[1]))
    return rows


ROWS = _table_rows()


def _default(name: str) -> Any:
    field = FIELDS[name]
    return field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]


def test_every_setting_is_in_the_readme_table() -> None:
    named = {name for names, _ in ROWS for name in names}
    assert sorted(set(FIELDS) - named) == []


def test_the_readme_table_names_only_settings() -> None:
    named = {name for names, _ in ROWS for name in names}
    assert sorted(named - set(FIELDS)) == []


def _literal(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


@pytest.mark.parametrize(("names", "cell"), ROWS, ids=["/".join(names) for names, _ in ROWS])
def test_the_readme_table_shows_the_default(names: list[str], cell: str) -> None:
    """A cell of backticked values (one per variable, `/`-separated) shows the code's defaults;
    `(none)` stands for an empty value. Cells in words (`SQLite in the data dir`) are prose."""
    parts = [part.strip() for part in cell.split(" / ")]
    if len(parts) != len(names):
        parts = [cell] * len(names)  # one cell for them all: `(none)`
    for name, part in zip(names, parts, strict=True):
        default = _default(name)
        shown = re.fullmatch(r"`([^`]*)`(?: \([^)]*\))?", part)
        if part == "(none)":
            assert not default, f"{name}: the table says (none), the code {default!r}"
        elif shown and isinstance(default, bool | int | float):
            assert _literal(shown[1]) == default, f"{name}: the table says {part}, the code {default!r}"
        elif shown and isinstance(default, str) and default:
            assert shown[1] == default, f"{name}: the table says {part}, the code {default!r}"
        elif shown and isinstance(default, Path):
            assert Path(shown[1]) == default, f"{name}: the table says {part}, the code {default!r}"


# -- README: the command-line block -------------------------------------------------------------


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command and group of the CLI by its path (the root is ``()``)."""
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():
        found |= _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(cli_app))
BLOCK = re.search(r"## Command line\n\n```\n(.*?)```", README, re.S)


def _block_segments() -> list[tuple[tuple[str, ...], list[str]]]:
    """(command path, options) of each command the block shows. A line holds one or more
    `/`-separated commands; a segment that does not start with a top-level command continues
    the group of the one before (`clients list / show ID`)."""
    assert BLOCK, "README has no command-line block"
    segments = []
    for line in BLOCK[1].splitlines():
        text = line.split("#", 1)[0].strip()
        if not text.startswith("sproutgate "):
            continue
        group: tuple[str, ...] = ()
        for raw in text.removeprefix("sproutgate ").split(" / "):
            words = raw.split()
            path: list[str] = []
            for word in words:
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                path.append(word)
            if path and (path[0],) not in COMMANDS and group:
                path = [*group, *path]
            options = re.findall(r"--[a-z][a-z-]*", raw)
            segments.append((tuple(path), options))
            group = tuple(path[:1])
    return segments


SEGMENTS = _block_segments()


@pytest.mark.parametrize(("path", "options"), SEGMENTS, ids=[" ".join(p) or "root" for p, _ in SEGMENTS])
def test_each_command_in_the_readme_exists(path: tuple[str, ...], options: list[str]) -> None:
    assert path in COMMANDS, f"sproutgate {' '.join(path)} is not a command"
    known = {opt for param in COMMANDS[path].params for opt in (*param.opts, *param.secondary_opts)}
    known.add("--help")
    assert sorted(set(options) - known) == []


def test_every_command_is_in_the_readme() -> None:
    shown = {path for path, _ in SEGMENTS}
    leaves = {path for path, cmd in COMMANDS.items() if path and not getattr(cmd, "commands", None)}
    # A leaf counts as shown when it or its group is named (`outbox` shows its listing).
    missing = {leaf for leaf in leaves if leaf not in shown}
    assert sorted(missing) == []


COMMAND = re.compile(r"(?:^|`|\$ )sproutgate ([a-z][^`\n#]*)", re.M)


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
)
def test_each_command_a_page_names_exists(doc: str) -> None:
    """`sproutgate clients rotate-secret ID`, `sproutgate outbox --failed`, in text or code
    blocks: the command exists and takes the options shown. `a / b` on one line names two
    commands, the second maybe without its group (`outbox retry ID|--all-failed`)."""
    wrong = []
    for match in COMMAND.finditer((ROOT / doc).read_text()):
        group: tuple[str, ...] = ()
        for raw in match[1].split(" / "):
            path: list[str] = []
            unknown = False
            for word in raw.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                if path and (*path, word) not in COMMANDS:
                    # a word after a group must be one of its commands (`clients nope`)
                    unknown = bool(getattr(COMMANDS.get(tuple(path)), "commands", None))
                    break
                path.append(word)
            if path and (path[0],) not in COMMANDS and group:
                path = [*group, *path]
            group = tuple(path[:1])
            known = {
                o
                for p in COMMANDS.get(tuple(path), COMMANDS[()]).params
                for o in (*p.opts, *p.secondary_opts)
            }
            options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", raw)) - {"--help"}
            if unknown or tuple(path) not in COMMANDS or not path or options - known:
                wrong.append(f"sproutgate {raw.strip()}")
    assert wrong == []


# -- docs/api-mapping.md: routes ----------------------------------------------------------------


def _served(data_dir: Path) -> set[tuple[str, str]]:
    from fastapi.routing import _IncludedRouter  # FastAPI 0.16x keeps included routers lazily

    from sproutgate.app import create_app

    def walk(routes: list[Any]) -> Any:
        for route in routes:
            if isinstance(route, _IncludedRouter):
                yield from walk(route.effective_candidates())
            else:
                yield route

    app = create_app(Settings(data_dir=data_dir))
    served = set()
    for route in walk(app.routes):
        methods = getattr(route, "methods", None) or set()
        for method in methods - {"HEAD", "OPTIONS"}:
            served.add((method, _shape(route.path)))
    return served


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


REQUEST = r"`((?:GET|POST|PUT|PATCH|DELETE)(?:`/`(?:GET|POST|PUT|PATCH|DELETE))*) (/[^` ]*)"
PAGES = ("/", "/login", "/logout", "/register", "/forgot-password", "/lang/", "/account", "/admin", "/chat")


def _is_page(path: str) -> bool:
    return (
        path == "/"
        or any(path == p or path.startswith(p + "/") for p in PAGES[1:])
        or path.startswith("/lang/")
    )


def _documented() -> set[tuple[str, str]]:
    """`METHOD /path` and `GET`/`POST /path` in docs/api-mapping.md. Tables by face name paths
    relative to their prefix (`GET /users/me/sessions` under "Runtime (`/api/v1`)"): those are
    taken under whichever of `/api/v1` or `/api` serves them."""
    found = set()
    for match in re.finditer(REQUEST, API_MAPPING):
        for method in match[1].split("`/`"):
            found.add((method, _shape(match[2])))
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    return _served(tmp_path_factory.mktemp("data"))


def test_each_route_in_api_mapping_is_served(served: set[tuple[str, str]]) -> None:
    assert ("POST", "/api/auth/login") in served and ("POST", "/oauth2/token") in served
    missing = set()
    for method, path in _documented():
        candidates = {path} if path.startswith(("/api", "/oauth2", "/.well-known")) else set()
        candidates |= {path, "/api/v1" + path, "/api" + path}
        if not any((method, c) in served for c in candidates):
            missing.add((method, path))
    assert sorted(missing) == []


# Requests the pages name that are not routes of ours: an example value, another server's API.
NOT_OURS = {("PUT", "/api/admin/users/alice"), ("POST", "/v1/chat/completions")}
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS)
def test_each_request_a_page_names_is_served(served: set[tuple[str, str]], doc: str) -> None:
    """`POST /oauth2/token`, `GET`/`POST /oauth2/userinfo`, relative paths under a face's prefix
    (`GET /users/me/sessions`): each must be a route of the app with that method."""
    text = (ROOT / doc).read_text()
    missing = set()
    for match in re.finditer(REQUEST, text):
        for method in match[1].split("`/`"):
            if (method, match[2].split("?")[0]) in NOT_OURS:
                continue
            path = _shape(match[2])
            if not any((method, c) in served for c in (path, "/api/v1" + path, "/api" + path)):
                missing.add((method, match[2]))
    assert sorted(missing) == []


def test_every_route_but_the_pages_is_in_api_mapping(served: set[tuple[str, str]]) -> None:
    documented = _documented()
    relative = {(m, "/api/v1" + p) for m, p in documented} | {(m, "/api" + p) for m, p in documented}
    undocumented = {
        (method, path)
        for method, path in served
        if not _is_page(path)
        and (method, path) not in documented | relative
        and not path.startswith(("/static", "/docs-assets"))
    }
    assert sorted(undocumented) == []


# -- docs/deployment.md -------------------------------------------------------------------------


def test_the_metrics_table_names_every_rate_limit_rule() -> None:
    row = next(
        line
        for line in DEPLOYMENT.splitlines()
        if line.startswith("| `sproutgate_rate_limit_refusals_total`")
    )
    named = set(re.findall(r"`([a-z_]+)`", row.split("|")[3]))
    assert sorted(set(RULES) - named) == []


def test_the_backups_table_names_every_key_file() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "sproutgate").rglob("*.py"))
    key_files = set(re.findall(r'"([a-z0-9-]+\.key)"', source))
    assert key_files, "no key file names found in the source"
    row = next(line for line in DEPLOYMENT.splitlines() if line.startswith("| `data/keys` |"))
    assert sorted(f for f in key_files if f"`{f}`" not in row) == []


# -- docs/oidc.md: the discovery document ---------------------------------------------------------


def test_the_discovery_row_of_oidc_md_shows_what_discovery_answers() -> None:
    """The endpoint table's discovery row names members with their values
    (`response_types_supported: ["code"]`): each member exists, and a JSON value shown is the
    value served (`rules.provider_metadata`)."""
    import json

    from sproutgate.domain.oidc.rules import provider_metadata

    metadata = provider_metadata("https://id.example.com")
    doc = (ROOT / "docs" / "oidc.md").read_text()
    row = next(
        line for line in doc.splitlines() if line.startswith("| `GET /.well-known/openid-configuration`")
    )
    shown = re.findall(r"`([a-z_]+)(?:: ([^`]+))?`", row.split("|")[2])
    assert len(shown) >= 5, row
    for member, value in shown:
        assert member in metadata, member
        if value.startswith(("[", "true", "false")):
            assert json.loads(value) == metadata[member], member
        elif value:  # a list in words: `ui_locales_supported: zh-CN en`
            assert set(re.split(r"[ ,]+", value)) == set(metadata[member]), member
