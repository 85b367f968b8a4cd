"""RFC 7807 problem responses, shared by both API faces and the JSON side of the pages.

Every error leaves the process as ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` (in the caller's language), ``instance`` and a stable ``code``; 422s add
``errors`` listing the offending fields; 429s carry ``Retry-After``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sproutgate import i18n
from sproutgate.domain import errors as E

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: list[tuple[type[E.DomainError], int]] = [
    (E.InvalidInput, 422),
    (E.Unauthorized, 401),
    (E.Forbidden, 403),
    (E.NotFound, 404),
    (E.Conflict, 409),
    (E.RateLimited, 429),
    (E.ServiceUnavailable, 503),
]

# The SproutGate face's spelling of the domain's field names (the domain and /api/v1 use
# snake_case). A face declares its spelling with ``wire_field_names``; nothing guesses it.
CAMEL = {
    "avatar_url": "avatarUrl",
    "new_password": "newPassword",
    "sprout_coins": "sproutCoins",
    "secondary_emails": "secondaryEmails",
    "current_password": "currentPassword",
    "page_size": "pageSize",
}


def lang_of(request: Request) -> str:
    lang = getattr(request.state, "lang", None)
    if lang:
        return lang
    return i18n.negotiate(request.headers.get("accept-language"))


def problem(
    request: Request,
    status: int,
    code: str,
    *,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    lang = lang_of(request)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": i18n.TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or i18n.t(code, lang, **extra.pop("params", {})),
        "instance": request.url.path,
        "code": code,
    }
    body.update(extra)
    hdrs = {"Content-Language": lang, "Cache-Control": "no-store"}
    hdrs.update(headers or {})
    return JSONResponse(body, status_code=status, headers=hdrs, media_type=PROBLEM_JSON)


def wire_field_names(names: dict[str, str]) -> Callable[[Request], Awaitable[None]]:
    """A router dependency by which a face declares how it spells the domain's field names in
    error bodies (``APIRouter(dependencies=[Depends(wire_field_names(CAMEL))])``). Router
    dependencies run before the body is validated, so validation errors are spelled too."""

    async def declare(request: Request) -> None:
        request.state.wire_field_names = names

    return declare


def _wire_field(request: Request, name: str) -> str:
    names: dict[str, str] | None = getattr(request.state, "wire_field_names", None)
    return names.get(name, name) if names else name


def field_errors(
    request: Request, fields: dict[str, str], params: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    lang = lang_of(request)
    settings = getattr(request.app.state, "settings", None)
    base = {
        "min": getattr(settings, "password_min_length", 6),
        "max": getattr(settings, "password_max_length", 128),
    }
    out = []
    for name, code in fields.items():
        p = dict(base)
        p.update((params or {}).get(name, {}))
        out.append({"field": _wire_field(request, name), "code": code, "message": i18n.t(code, lang, **p)})
    return out


def domain_error_response(request: Request, exc: E.DomainError) -> JSONResponse:
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, E.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        extra["params"] = {"retry_after": exc.retry_after}
    if isinstance(exc, E.NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, E.InvalidInput):
        errors = field_errors(request, exc.fields)
        detail = i18n.t("invalid_input", lang_of(request))
        if errors:
            detail = f"{detail}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(request, 422, exc.code, detail=detail, errors=errors)
    return problem(request, status, exc.code, headers=headers, **extra)


_PYDANTIC_CODES = {
    "missing": "field_required",
    "string_too_short": "invalid_length",
    "string_too_long": "too_long",
    "too_short": "invalid_length",
    "too_long": "too_long",
    "uuid_parsing": "invalid_uuid",
    "uuid_type": "invalid_uuid",
    "string_type": "invalid_type",
    "int_type": "invalid_type",
    "int_parsing": "invalid_type",
    "bool_type": "invalid_type",
    "bool_parsing": "invalid_type",
    "list_type": "invalid_type",
    "dict_type": "invalid_type",
    "model_type": "invalid_type",
    "url_parsing": "invalid_url",
    "url_scheme": "invalid_url",
    "url_type": "invalid_url",
    "value_error": "invalid_value",
    "string_pattern_mismatch": "invalid_value",
}


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errs):
        return problem(request, 422, "malformed_json", errors=[])
    fields: dict[str, str] = {}
    params: dict[str, dict[str, Any]] = {}
    for e in errs:
        # Drop only the leading location: a field may itself be called "query" or "body".
        loc = [str(p) for p in e.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        name = ".".join(loc) or "body"
        code = _PYDANTIC_CODES.get(e.get("type", ""), "invalid_value")
        ctx = e.get("ctx") or {}
        if code == "invalid_length":
            params[name] = {"min": ctx.get("min_length", 0), "max": ctx.get("max_length", "")}
        if code == "too_long":
            params[name] = {"max": ctx.get("max_length", "")}
        msg = str(ctx.get("error", "")) if e.get("type") == "value_error" else ""
        if msg in i18n.MESSAGES:
            code = msg
        fields.setdefault(name, code)
    errors = field_errors(request, fields, params)
    detail = (
        i18n.t("invalid_input", lang_of(request))
        + ": "
        + "; ".join(f"{x['field']}: {x['message']}" for x in errors)
    )
    return problem(request, 422, "invalid_input", detail=detail, errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.DomainError)
    async def _domain(request: Request, exc: E.DomainError) -> JSONResponse:
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_input"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body it cannot decode (not UTF-8, say): malformed like bad JSON.
            return problem(request, 422, "malformed_json", headers=headers, errors=[])
        return problem(request, exc.status_code, code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A race the service did not turn into a domain error: the loser conflicts, nothing is lost.
        log.warning("constraint violated on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem(request, 409, "conflict")

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (PostgreSQL enforces lengths and types SQLite does not).
        log.error("database refused a value on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem(request, 422, "invalid_input", errors=[])

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        # asyncpg's errors reach SQLAlchemy as plain DBAPIErrors; their SQLSTATE class tells a
        # refused value (22, e.g. a NUL character) or a constraint (23) from an outage.
        sqlstate = str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")
        if sqlstate.startswith("22"):
            return await _data(request, exc)  # type: ignore[arg-type]
        if sqlstate.startswith("23"):
            return await _integrity(request, exc)  # type: ignore[arg-type]
        log.error("backing service unavailable on %s: %s", request.url.path, type(exc).__name__)
        return problem(request, 503, "database_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(request, 500, "internal_error")


def document_problem_responses(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above send.

    FastAPI documents an error ``model`` as ``application/json`` and adds its own
    ``HTTPValidationError`` 422; every error really leaves as ``application/problem+json`` with
    the Problem shape. Rewrites each 4xx/5xx response of the generated document once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", _PROBLEM_SCHEMA)
        ref = {"$ref": "#/components/schemas/Problem"}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if str(status)[:1] not in ("4", "5"):
                        continue
                    content = response.get("content", {})
                    schema = next(
                        (
                            c["schema"]
                            for c in content.values()
                            if c.get("schema") and "HTTPValidationError" not in str(c["schema"])
                        ),
                        ref,
                    )
                    response["content"] = {PROBLEM_JSON: {"schema": schema}}
                    if response.get("description") in (None, "", str(status), "Validation Error"):
                        response["description"] = i18n.TITLES.get(int(status), "Error")
        if "HTTPValidationError" not in str(doc.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 7807 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
}
