"""RFC 7807 problem responses, shared by both API faces and the JSON side of the pages.

Every error leaves the process as ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` (in the caller's language), ``instance``, a stable ``code`` and the
``request_id`` that the response's X-Request-ID header and the request's log lines carry; 422s
add ``errors`` listing the offending fields; 429s carry ``Retry-After``."""

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
from sproutgate.api.middleware import current_request_id
from sproutgate.domain import errors as E
from sproutgate.domain.accounts.rules import ACCOUNT_LIMITS, PasswordPolicy
from sproutgate.domain.codes.rules import CODE_LENGTH
from sproutgate.domain.profiles.rules import SPROUTGATE_PROFILE, ProfileRules

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
    "mfa_token": "mfaToken",
    "reset_mfa": "resetMfa",
    # OAuth clients (/api/admin/clients)
    "redirect_uris": "redirectUris",
    "post_logout_redirect_uris": "postLogoutRedirectUris",
    "backchannel_logout_uri": "backchannelLogoutUri",
    "first_party": "firstParty",
    "grant_types": "grantTypes",
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
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
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


def _domain_field(request: Request, wire: str) -> str:
    names: dict[str, str] | None = getattr(request.state, "wire_field_names", None)
    for name, spelled in (names or {}).items():
        if spelled == wire:
            return name
    return wire


def profile_rules(rules: ProfileRules) -> Callable[[Request], Awaitable[None]]:
    """A router dependency by which a face declares the profile rules it follows, so that its
    field messages name those limits (``SPROUTGATE_PROFILE`` when a face declares none)."""

    async def declare(request: Request) -> None:
        request.state.profile_rules = rules

    return declare


# Fields that hold a new password: their messages name the password policy's limits.
_NEW_PASSWORD_FIELDS = frozenset({"password", "new_password"})


def field_limits(request: Request) -> dict[str, dict[str, Any]]:
    """The limits each field's messages name for this request, from the domain: the profile
    rules the face declared (``profile_rules``: RUNTIME_PROFILE for /api/v1; SPROUTGATE_PROFILE
    for /api and the pages), the password policy in force and the account-name rule. Keys are
    domain field names."""
    rules: ProfileRules = getattr(request.state, "profile_rules", SPROUTGATE_PROFILE)
    services = getattr(request.app.state, "services", None)
    accounts = getattr(services, "accounts", None)
    policy: PasswordPolicy = getattr(accounts, "policy", None) or PasswordPolicy()
    limits: dict[str, dict[str, Any]] = dict(rules.limits())
    limits.update({name: policy.limits() for name in _NEW_PASSWORD_FIELDS})
    limits["account"] = dict(ACCOUNT_LIMITS)
    limits["code"] = limits["token"] = {"length": CODE_LENGTH}
    return limits


def field_errors(
    request: Request,
    fields: dict[str, str],
    schema_limits: dict[str, dict[str, Any]] | None = None,
    lists: frozenset[str] = frozenset(),
) -> list[dict[str, str]]:
    """``[{field, code, message}]`` for field name -> code, in the caller's language, each
    message naming the limits that field really has.

    A domain error (``schema_limits`` None) names the domain's limits (``field_limits``). A
    schema error names the schema's (``schema_limits``: what the failed constraint said), except
    for the profile fields, whose schemas are built from the domain's rules and whose messages
    name both ends. ``lists`` are fields whose length counts entries."""
    lang = lang_of(request)
    known = field_limits(request)
    profile = ProfileRules().limits().keys()
    out = []
    for name, code in fields.items():
        domain_name = _domain_field(request, name)
        if schema_limits is None or domain_name in profile:
            limits = known.get(domain_name, {})
        else:
            limits = schema_limits.get(name, {})
        message = i18n.field_message(code, lang, limits, items=name in lists)
        out.append({"field": _wire_field(request, name), "code": code, "message": message})
    return out


def invalid_input_detail(request: Request, errors: list[dict[str, str]]) -> str:
    """A 422's detail: the fields and their messages as one sentence."""
    return i18n.invalid_fields_detail(lang_of(request), ((e["field"], e["message"]) for e in errors))


def domain_error_response(request: Request, exc: E.DomainError) -> JSONResponse:
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 400)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, E.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        extra["params"] = {"retry_after": exc.retry_after}
    if isinstance(exc, E.NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    for name in exc.public:  # values the error hands the caller (an mfa_token), in the face's spelling
        if name in exc.params:
            extra[_wire_field(request, name)] = exc.params[name]
    if isinstance(exc, E.InvalidInput):
        errors = field_errors(request, exc.fields)
        return problem(request, 422, exc.code, detail=invalid_input_detail(request, errors), errors=errors)
    return problem(request, status, exc.code, headers=headers, **extra)


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The problem for a routing-level error (no such path, method not allowed, body too large)."""
    code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "invalid_input"
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's answer to a body it cannot decode (not UTF-8, say): malformed like bad JSON.
        return problem(request, 422, "malformed_json", headers=headers, errors=[])
    return problem(request, exc.status_code, code, headers=headers)


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
    limits: dict[str, dict[str, Any]] = {}
    lists: set[str] = set()
    for e in errs:
        # Drop only the leading location: a field may itself be called "query" or "body".
        loc = [str(p) for p in e.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        name = ".".join(loc) or "body"
        kind = e.get("type", "")
        code = _PYDANTIC_CODES.get(kind, "invalid_value")
        ctx = e.get("ctx") or {}
        if code in i18n.LENGTH_CODES:
            limits[name] = {"min": ctx.get("min_length"), "max": ctx.get("max_length")}
            if kind in ("too_short", "too_long"):  # a list's length, not a string's
                lists.add(name)
        msg = str(ctx.get("error", "")) if kind == "value_error" else ""
        if msg in i18n.MESSAGES:
            code = msg
        fields.setdefault(name, code)
    errors = field_errors(request, fields, limits, frozenset(lists))
    return problem(request, 422, "invalid_input", detail=invalid_input_detail(request, errors), errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.DomainError)
    async def _domain(request: Request, exc: E.DomainError) -> JSONResponse:
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(request, exc)

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
        "request_id": {"type": "string", "description": "The request's id, as in its X-Request-ID header."},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
}
