"""Messages in zh-CN (the default) and en, chosen from ``Accept-Language``. Mail texts are
template files (infra/mail_templates/), not here."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"


def negotiate(accept_language: str | None) -> str:
    """Pick zh-CN or en from an Accept-Language header, honouring q-values."""
    if not accept_language:
        return DEFAULT_LANG
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if tag:
            choices.append((-q, i, tag))
    for neg_q, _, tag in sorted(choices):
        if neg_q >= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANG


MESSAGES: dict[str, dict[str, str]] = {
    "invalid_input": {"zh-CN": "请求参数无效", "en": "The request is invalid."},
    "invalid_credentials": {"zh-CN": "账号或密码错误", "en": "Wrong account or password."},
    "invalid_code": {"zh-CN": "验证码无效或已过期", "en": "The code is invalid or has expired."},
    "invalid_refresh_token": {"zh-CN": "无效的 refresh token", "en": "The refresh token is invalid."},
    "not_authenticated": {"zh-CN": "未认证", "en": "Authentication is required."},
    "account_disabled": {"zh-CN": "账号已被停用", "en": "This account has been disabled."},
    "forbidden": {"zh-CN": "无权限访问", "en": "You are not allowed to do this."},
    "recent_auth_required": {
        "zh-CN": "此操作需要提供当前密码(currentPassword),或在最近几分钟内重新登录",
        "en": "This change needs the current password (currentPassword) or a recent sign-in.",
    },
    "wrong_current_password": {"zh-CN": "当前密码错误", "en": "The current password is wrong."},
    "mfa_required": {
        "zh-CN": "密码正确,还需要验证器应用中的验证码或恢复码",
        "en": "The password is right; now enter a code from your authenticator app or a recovery code.",
    },
    "invalid_mfa_code": {
        "zh-CN": "验证码错误或已被使用",
        "en": "The code is wrong or has already been used.",
    },
    "invalid_mfa_token": {
        "zh-CN": "登录已过期或尝试次数过多,请重新输入密码登录",
        "en": "This sign-in expired or had too many wrong codes. Sign in with your password again.",
    },
    "reauthentication_required": {
        "zh-CN": "请提供当前密码(password)后再修改两步验证",
        "en": "Changing second factors needs your current password (password).",
    },
    "wrong_password": {"zh-CN": "密码错误", "en": "The password is wrong."},
    "mfa_already_enabled": {
        "zh-CN": "验证器应用已开启,请先关闭再重新绑定",
        "en": "An authenticator app is already on. Turn it off before adding another.",
    },
    "mfa_not_enabled": {"zh-CN": "尚未开启验证器应用", "en": "No authenticator app is on."},
    "second_factor_unavailable": {
        "zh-CN": "暂时无法验证两步验证码,请联系管理员",
        "en": "Second-factor codes cannot be checked right now. Contact the administrator.",
    },
    "no_pending_enrolment": {
        "zh-CN": "没有待确认的验证器绑定,请重新开始",
        "en": "No authenticator enrolment is waiting for a code. Start again.",
    },
    "not_found": {"zh-CN": "资源不存在", "en": "Not found."},
    "user_not_found": {"zh-CN": "用户不存在", "en": "User not found."},
    "email_not_found": {
        "zh-CN": "这不是你的辅助邮箱",
        "en": "This address is not one of your secondary addresses.",
    },
    "message_not_found": {"zh-CN": "邮件不存在或无需重发", "en": "No such message waiting or failed."},
    "chat_not_found": {"zh-CN": "会话不存在", "en": "Chat session not found."},
    "route_not_found": {"zh-CN": "接口不存在", "en": "No such endpoint."},
    "method_not_allowed": {"zh-CN": "不支持的请求方法", "en": "Method not allowed."},
    "conflict": {"zh-CN": "资源冲突", "en": "Conflict."},
    "account_taken": {"zh-CN": "账号名已被使用", "en": "This account name is taken."},
    "email_taken": {"zh-CN": "该邮箱已被使用", "en": "This email address is already in use."},
    "rate_limited": {
        "zh-CN": "请求过于频繁,请 {retry_after} 秒后再试",
        "en": "Too many requests. Try again in {retry_after} {retry_after:second|seconds}.",
    },
    "service_unavailable": {"zh-CN": "服务暂不可用", "en": "The service is temporarily unavailable."},
    "database_unavailable": {"zh-CN": "数据库暂不可用", "en": "The database is temporarily unavailable."},
    "agent_not_configured": {
        "zh-CN": "未配置 Agent 模型:请设置 SPROUTGATE_AGENT_MODEL、SPROUTGATE_AGENT_BASE_URL "
        "和 SPROUTGATE_AGENT_API_KEY",
        "en": "No agent model is configured: set SPROUTGATE_AGENT_MODEL, SPROUTGATE_AGENT_BASE_URL "
        "and SPROUTGATE_AGENT_API_KEY.",
    },
    # agent run errors (the `error` of a run_error event)
    "agent_timeout": {
        "zh-CN": "模型未能在 {seconds} 秒内完成回答,请稍后再试",
        "en": "The model did not finish within {seconds} {seconds:second|seconds}. Try again later.",
    },
    "agent_model_error": {
        "zh-CN": "模型服务出错(HTTP {status}),请稍后再试",
        "en": "The model service failed (HTTP {status}). Try again later.",
    },
    "agent_model_unreachable": {
        "zh-CN": "无法连接模型服务,请稍后再试",
        "en": "The model service could not be reached. Try again later.",
    },
    "agent_too_many_steps": {
        "zh-CN": "Agent 步骤过多,已停止本次运行",
        "en": "The agent took too many steps and was stopped.",
    },
    "agent_run_failed": {
        "zh-CN": "Agent 运行失败,请稍后再试",
        "en": "The agent run failed. Try again later.",
    },
    "payload_too_large": {"zh-CN": "请求体过大", "en": "The request body is too large."},
    "malformed_json": {"zh-CN": "请求体不是合法的 JSON", "en": "The request body is not valid JSON."},
    "admin_token_required": {"zh-CN": "需要有效的管理员 Token", "en": "A valid admin token is required."},
    "csrf_failed": {
        "zh-CN": "页面已过期或请求来源不可信,请刷新页面后重试",
        "en": "The page expired or the request came from another site. Reload the page and try again.",
    },
    "internal_error": {"zh-CN": "服务器内部错误", "en": "Internal server error."},
    # Field-level codes. Each message reads after the field's name ("username must be 3 to 30
    # characters long", "邮箱格式无效"): problem details put the field before it, the pages its
    # label (field_message picks the wording that names the field's real limits).
    "field_required": {"zh-CN": "不能为空", "en": "is required"},
    "invalid_email": {"zh-CN": "格式无效", "en": "is not a valid email address"},
    "password_too_short": {
        "zh-CN": "至少需要 {min} 个字符",
        "en": "must be at least {min} {min:character|characters} long",
    },
    "password_too_long": {
        "zh-CN": "最多 {max} 个字符",
        "en": "must be at most {max} {max:character|characters} long",
    },
    "password_too_common": {"zh-CN": "过于常见,请换一个", "en": "is too common; choose another"},
    "invalid_account": {
        "zh-CN": "应为 {min}–{max} 个字符,只能包含字母、数字、下划线、连字符和点",
        "en": "must be {min} to {max} characters long, using letters, digits, underscores, hyphens and dots",
    },
    "account_immutable": {"zh-CN": "一经设定不可修改", "en": "can never change once given"},
    "invalid_length": {
        "zh-CN": "长度应为 {min}–{max} 个字符",
        "en": "must be {min} to {max} characters long",
    },
    "too_long": {"zh-CN": "最多 {max} 个字符", "en": "must be at most {max} {max:character|characters} long"},
    "too_short": {
        "zh-CN": "至少需要 {min} 个字符",
        "en": "must be at least {min} {min:character|characters} long",
    },
    "too_many_items": {"zh-CN": "最多 {max} 项", "en": "must have at most {max} {max:item|items}"},
    "wrong_length": {"zh-CN": "长度不符合要求", "en": "has the wrong length"},
    "invalid_url": {"zh-CN": "必须是 http(s) 链接", "en": "must be an http(s) URL"},
    "invalid_phone": {
        "zh-CN": "最多 {max} 个字符,只能包含数字、空格、+ 和 -",
        "en": "must be at most {max} digits, spaces, + or - signs",
    },
    "invalid_code_format": {"zh-CN": "应为 {length} 位数字", "en": "must be {length} digits"},
    "invalid_value": {"zh-CN": "取值无效", "en": "is not valid"},
    "invalid_count": {"zh-CN": "应为不小于 0 的整数", "en": "must be a whole number, 0 or more"},
    "primary_email": {
        "zh-CN": "这是主邮箱,不能作为辅助邮箱移除",
        "en": "is the primary address and cannot be removed",
    },
    "invalid_mfa_code_format": {
        "zh-CN": "应为验证器中的 6 位数字或恢复码(如 k7qm-3xth-9wpa)",
        "en": "must be 6 digits from the authenticator app or a recovery code (like k7qm-3xth-9wpa)",
    },
    "contains_nul": {"zh-CN": "不能包含 NUL 字符", "en": "must not contain NUL characters"},
    "invalid_uuid": {"zh-CN": "必须是 UUID", "en": "must be a UUID"},
    "invalid_type": {"zh-CN": "类型错误", "en": "has the wrong type"},
    # -- OAuth client registry (issue 12) -----------------------------------------------------
    "client_not_found": {"zh-CN": "应用(OAuth 客户端)不存在", "en": "No such client (app)."},
    "invalid_client": {"zh-CN": "客户端认证失败", "en": "Client authentication failed."},
    "public_client_has_no_secret": {
        "zh-CN": "公开客户端没有密钥",
        "en": "A public client has no secret.",
    },
    "invalid_redirect_uri": {
        "zh-CN": "必须是完整的 URI(ASCII,不含空格)",
        "en": "must be absolute URI(s) in ASCII without spaces",
    },
    "redirect_uri_fragment": {"zh-CN": "不能包含片段(#…)", "en": "must not contain a fragment (#...)"},
    "insecure_redirect_uri": {
        "zh-CN": "必须使用 https(http 仅限本机回环地址)",
        "en": "must use https (http only on a loopback address)",
    },
    "custom_scheme_needs_public_client": {
        "zh-CN": "自定义 scheme 仅限公开(原生)客户端",
        "en": "may use a custom scheme only for a public (native) client",
    },
    "invalid_custom_scheme": {
        "zh-CN": "自定义 scheme 应为倒序域名(如 com.example.app)",
        "en": "must use a custom scheme that is a reverse domain name (like com.example.app)",
    },
    "too_many_uris": {"zh-CN": "最多 20 个", "en": "must list at most 20 URIs"},
    "client_name_too_long": {"zh-CN": "最多 100 个字符", "en": "must be at most 100 characters long"},
    "unknown_scope": {
        "zh-CN": "只能是 openid、profile、email、offline_access、sproutgate",
        "en": "must be among openid, profile, email, offline_access, sproutgate",
    },
    "unknown_grant_type": {
        "zh-CN": "只能是 authorization_code、refresh_token、client_credentials",
        "en": "must be among authorization_code, refresh_token, client_credentials",
    },
    "client_credentials_needs_confidential_client": {
        "zh-CN": "client_credentials 仅限机密客户端",
        "en": "may include client_credentials only for a confidential client",
    },
    "refresh_token_needs_authorization_code": {
        "zh-CN": "包含 refresh_token 时也须包含 authorization_code",
        "en": "must include authorization_code when it includes refresh_token",
    },
    "client_type_fixed": {
        "zh-CN": "客户端类型注册后不可更改",
        "en": "cannot change after registration (register a new client instead)",
    },
    # A 422's detail: the fields and their messages as one sentence.
    "invalid_fields": {"zh-CN": "请求参数无效:{fields}。", "en": "The request is invalid: {fields}."},
}

# -- passkeys (domain/passkeys): what a refused ceremony says, plainly -------------------------
MESSAGES.update(
    {
        "passkey_rejected": {
            "zh-CN": "通行密钥验证失败,未能登录。请重试,或改用密码登录。",
            "en": "The passkey could not be verified, so you are not signed in. Try again, or sign in "
            "with your password.",
        },
        "passkey_not_recognized": {
            "zh-CN": "这个通行密钥没有在 SproutGate 登记(可能已被移除)。请改用密码登录。",
            "en": "This passkey is not registered with SproutGate (it may have been removed). Sign in "
            "with your password.",
        },
        "passkey_challenge_invalid": {
            "zh-CN": "这次通行密钥请求已过期或已被使用,请重新开始。",
            "en": "This passkey request expired or was already used. Start again.",
        },
        "passkey_registration_failed": {
            "zh-CN": "无法验证这个通行密钥,未添加。请重试。",
            "en": "The new passkey could not be verified, so it was not added. Try again.",
        },
        "passkey_already_registered": {
            "zh-CN": "这个通行密钥已经登记过了",
            "en": "This passkey is registered already.",
        },
        "too_many_passkeys": {
            "zh-CN": "通行密钥数量已达上限,请先移除一个",
            "en": "You have as many passkeys as allowed. Remove one before adding another.",
        },
        "passkey_not_found": {"zh-CN": "没有这个通行密钥", "en": "No such passkey."},
        "no_passkeys": {
            "zh-CN": "这个账号没有通行密钥,请输入验证码",
            "en": "This account has no passkey. Enter a code instead.",
        },
    }
)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Formatter(string.Formatter):
    """``str.format`` plus plural choice: ``{n:item|items}`` is "item" when n is 1, else
    "items" (English's rule; Chinese texts have no plural forms)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" in format_spec:
            one, _, other = format_spec.partition("|")
            return one if str(value).strip() == "1" else other
        return str(super().format_field(value, format_spec))


_formatter = _Formatter()


def render(text: str, **params: Any) -> str:
    """``text`` with its ``{name}`` and ``{n:one|other}`` fields filled in; left as it is when a
    parameter is missing."""
    try:
        return _formatter.format(text, **params)
    except (KeyError, IndexError, ValueError):
        return text


def t(code: str, lang: str, **params: Any) -> str:
    """The message for ``code`` in ``lang`` (zh-CN when there is none in it)."""
    entry = MESSAGES.get(code) or MESSAGES["invalid_value"]
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return render(text, **params)


# Codes whose message names a length; field_message words them by what the field's limits are.
LENGTH_CODES = frozenset({"invalid_length", "too_long", "too_short"})


def field_message(
    code: str, lang: str, limits: Mapping[str, Any] | None = None, *, items: bool = False
) -> str:
    """The message for a field error, naming the field's own limits (``min``/``max``; for a
    list, ``items`` counts entries rather than characters). The stable code stays as it is;
    only the words follow the limits: "must be 3 to 30 characters long", never "3-"."""
    limits = {k: v for k, v in (limits or {}).items() if v not in (None, "")}
    if code in LENGTH_CODES:
        low, high = limits.get("min"), limits.get("max")
        if items:
            code = "too_many_items" if high is not None else "wrong_length"
        elif low and high is not None:
            code = "invalid_length"
        elif high is not None:
            code = "too_long"
        elif low:
            code = "too_short"
        else:
            code = "wrong_length"
    return t(code, lang, **limits)


def invalid_fields_detail(lang: str, problems: Iterable[tuple[str, str]]) -> str:
    """A 422's detail: each (field, message) pair, in one sentence."""
    separator = ";" if lang == "zh-CN" else "; "
    joined = separator.join(f"{field} {message}" for field, message in problems)
    if not joined:
        return t("invalid_input", lang)
    return t("invalid_fields", lang, fields=joined)


# Self-service (issue 14): a user's sessions and changing the primary address.
MESSAGES.update(
    {
        "session_not_found": {
            "zh-CN": "没有这个会话,或它已经结束",
            "en": "No such session, or it has already ended.",
        },
        "same_email": {"zh-CN": "已经是你的主邮箱", "en": "is already your primary address"},
    }
)


# Mail texts live in template files, one per kind and language: infra/mail_templates/
# (overridable with SPROUTGATE_MAIL_TEMPLATES_DIR; docs/deployment.md).
