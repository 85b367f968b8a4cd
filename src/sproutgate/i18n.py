"""Messages in zh-CN (the default) and en, chosen from ``Accept-Language``."""

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


MAIL: dict[str, dict[str, tuple[str, str]]] = {
    # kind: lang: (subject, body)  - body placeholders: code, minutes, link, email, account
    "signup_code": {
        "zh-CN": (
            "【SproutGate】注册验证码 {code}",
            "你好!\n\n你的注册验证码是:{code}\n{minutes} 分钟内有效。\n\n也可以打开:{link}\n\n"
            "如果不是你本人操作,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] Your sign-up code is {code}",
            "Hello!\n\nYour sign-up code is: {code}\nIt is valid for {minutes} {minutes:minute|minutes}.\n\n"
            "Or open: {link}\n\nIf you did not ask for this, ignore this email.",
        ),
    },
    "signup_existing": {
        "zh-CN": (
            "【SproutGate】有人尝试用你的邮箱注册",
            "你好!\n\n有人尝试用这个邮箱({email})注册新账号,但它已经注册过了。\n"
            "如果是你本人,请直接登录;忘记密码可在此重置:{link}\n\n如果不是你,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] Someone tried to sign up with your email",
            "Hello!\n\nSomeone tried to create an account with this address ({email}), which is "
            "already registered.\nIf it was you, just sign in; if you forgot your password, reset it "
            "here: {link}\n\nIf it was not you, ignore this email.",
        ),
    },
    "reset_unknown": {
        "zh-CN": (
            "【SproutGate】重置密码请求",
            "你好!\n\n有人请求重置这个邮箱({email})的密码,但没有可以用它重置密码的 SproutGate 账号。\n"
            "如果你想注册,可以在这里注册:{link}\n\n如果不是你本人操作,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] Password reset request",
            "Hello!\n\nSomeone asked to reset the password for this address ({email}), but no "
            "SproutGate account can be reset with it.\nIf you meant to sign up, you can do so here: "
            "{link}\n\nIf it was not you, ignore this email.",
        ),
    },
    "secondary_taken": {
        "zh-CN": (
            "【SproutGate】有人尝试添加你的邮箱",
            "你好!\n\n有人尝试把这个邮箱({email})添加为另一个 SproutGate 账号的备用邮箱,"
            "但它已经属于一个账号,因此没有发送验证码,什么也没有改变。\n\n如果不是你本人操作,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] Someone tried to add your email",
            "Hello!\n\nSomeone tried to add this address ({email}) to another SproutGate account as a "
            "secondary address. It already belongs to an account, so no code was sent and nothing "
            "changed.\n\nIf it was not you, ignore this email.",
        ),
    },
    "reset_code": {
        "zh-CN": (
            "【SproutGate】重置密码验证码 {code}",
            "你好!\n\n你的重置密码验证码是:{code}\n{minutes} 分钟内有效。\n\n也可以打开:{link}\n\n"
            "如果不是你本人操作,请忽略这封邮件,你的密码不会改变。",
        ),
        "en": (
            "[SproutGate] Your password reset code is {code}",
            "Hello!\n\nYour password reset code is: {code}\n"
            "It is valid for {minutes} {minutes:minute|minutes}.\n\n"
            "Or open: {link}\n\nIf you did not ask for this, ignore this email; your password stays.",
        ),
    },
    "password_changed": {
        "zh-CN": (
            "【SproutGate】你的密码已修改",
            "你好 {account}!\n\n你的账号密码刚刚被修改,其他已登录的会话都已退出。\n"
            "如果不是你本人操作,请立即重置密码:{link}",
        ),
        "en": (
            "[SproutGate] Your password was changed",
            "Hello {account}!\n\nThe password of your account was just changed and your other "
            "sessions were signed out.\nIf this was not you, reset your password now: {link}",
        ),
    },
    "signup_set_password": {
        "zh-CN": (
            "【SproutGate】请为新账号设置密码,验证码 {code}",
            "你好 {account}!\n\n你的账号已创建。注册等待验证期间,有人用同一个邮箱提交了另一个密码,"
            "为了安全,这个账号暂时没有密码,任何人都无法用密码登录。\n"
            "请用这个验证码设置密码:{code}({minutes} 分钟内有效),打开:{link}\n"
            "验证码过期后,可以随时在登录页选择“忘记密码”用本邮箱设置密码。",
        ),
        "en": (
            "[SproutGate] Choose a password for your new account: code {code}",
            "Hello {account}!\n\nYour account was created. While the sign-up waited for its code, "
            "someone sent another password for this address, so to be safe the account has no "
            "password yet and nobody can sign in with one.\n"
            "Choose your password with this code: {code} "
            "(valid for {minutes} {minutes:minute|minutes}) at: {link}\n"
            'If the code expires, use "Forgot password" with this address at any time.',
        ),
    },
    "secondary_added": {
        "zh-CN": (
            "【SproutGate】你的账号添加了辅助邮箱",
            "你好 {account}!\n\n邮箱 {email} 刚刚被添加为你账号的辅助邮箱,"
            "它可以登录并接收重置密码的验证码。\n"
            "如果不是你本人操作,请立即在账号页面移除它并修改密码:{link}",
        ),
        "en": (
            "[SproutGate] A secondary address was added to your account",
            "Hello {account}!\n\nThe address {email} was just added to your account as a secondary "
            "address: it can sign in and receive password reset codes.\n"
            "If this was not you, remove it on your account page now and change your password: {link}",
        ),
    },
    "secondary_removed": {
        "zh-CN": (
            "【SproutGate】你的账号移除了辅助邮箱",
            "你好 {account}!\n\n邮箱 {email} 已从你的账号移除,不能再用它登录或重置密码。\n"
            "如果不是你本人操作,请立即重置密码:{link}",
        ),
        "en": (
            "[SproutGate] A secondary address was removed from your account",
            "Hello {account}!\n\nThe address {email} was removed from your account: it no longer "
            "signs in or receives password reset codes.\n"
            "If this was not you, reset your password now: {link}",
        ),
    },
    "secondary_code": {
        "zh-CN": (
            "【SproutGate】辅助邮箱验证码 {code}",
            "你好!\n\n你正在为账号 {account} 添加辅助邮箱,验证码是:{code}\n{minutes} 分钟内有效。\n\n"
            "如果不是你本人操作,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] Your secondary email code is {code}",
            "Hello!\n\nYou are adding this address to the account {account}. Your code is: {code}\n"
            "It is valid for {minutes} {minutes:minute|minutes}.\n\n"
            "If you did not ask for this, ignore this email.",
        ),
    },
    "signup_held": {
        "zh-CN": (
            "【SproutGate】这个邮箱暂时不能注册",
            "你好!\n\n有人尝试用这个邮箱({email})注册新账号。它属于一个最近删除的账号,"
            "在保留期结束前不能用于注册。\n保留期结束后即可重新注册。\n\n如果不是你本人操作,请忽略这封邮件。",
        ),
        "en": (
            "[SproutGate] This address cannot be used yet",
            "Hello!\n\nSomeone tried to create an account with this address ({email}). It belonged "
            "to an account that was deleted recently and cannot be used for a new one until its hold "
            "period ends.\nAfter that, you can sign up with it again.\n\nIf it was not you, ignore "
            "this email.",
        ),
    },
    "account_deleted": {
        "zh-CN": (
            "【SproutGate】你的账号已删除",
            "你好 {account}!\n\n你的账号已于 {at} 按你的要求删除:所有会话和令牌都已失效,"
            "待用的验证码、助手对话和资料都已删除。\n"
            "你的邮箱和账号名从 {until} 起可以重新注册。\n\n"
            "如果不是你本人操作,说明有人知道你的密码:请立即联系管理员,并修改你在其他地方使用的相同密码。",
        ),
        "en": (
            "[SproutGate] Your account was deleted",
            "Hello {account}!\n\nYour account was deleted at your request on {at}: every session "
            "and token has ended, and pending codes, assistant conversations and your profile are "
            "gone.\nYour address and account name can be registered again from {until}.\n\n"
            "If this was not you, someone knows your password: contact the "
            "administrator now, and change that password wherever else you use it.",
        ),
    },
    "account_deleted_by_admin": {
        "zh-CN": (
            "【SproutGate】你的账号已被管理员删除",
            "你好 {account}!\n\n你的账号已于 {at} 被管理员删除:所有会话和令牌都已失效,"
            "待用的验证码、助手对话和资料都已删除。\n"
            "你的邮箱和账号名从 {until} 起可以重新注册。\n\n如有疑问,请联系管理员。",
        ),
        "en": (
            "[SproutGate] Your account was deleted by an administrator",
            "Hello {account}!\n\nAn administrator deleted your account on {at}: every session and "
            "token has ended, and pending codes, assistant conversations and your profile are gone.\n"
            "Your address and account name can be registered again from {until}.\n\n"
            "If you have questions, contact the administrator.",
        ),
    },
}


_MFA_FOOTER = {
    "zh-CN": "\n\n如果不是你本人操作,请立即修改密码,并检查你的两步验证设置:{link}",
    "en": "\n\nIf this was not you, change your password now and check your second factors: {link}",
}
MAIL.update(
    {
        "mfa_enabled": {
            "zh-CN": (
                "【SproutGate】已开启验证器应用",
                "你好 {account}!\n\n你的账号刚刚开启了验证器应用(两步验证),登录时除密码外还需要验证码。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] An authenticator app was turned on",
                "Hello {account}!\n\nAn authenticator app (second factor) was just turned on for your "
                "account: signing in now also needs a code from it." + _MFA_FOOTER["en"],
            ),
        },
        "mfa_disabled": {
            "zh-CN": (
                "【SproutGate】已关闭验证器应用",
                "你好 {account}!\n\n你的账号刚刚关闭了验证器应用,恢复码已失效,其他已登录的会话都已退出。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] An authenticator app was turned off",
                "Hello {account}!\n\nThe authenticator app of your account was just turned off; its "
                "recovery codes no longer work and your other sessions were signed out." + _MFA_FOOTER["en"],
            ),
        },
        "mfa_recovery_regenerated": {
            "zh-CN": (
                "【SproutGate】已生成新的恢复码",
                "你好 {account}!\n\n你的账号刚刚生成了一组新的恢复码,之前的恢复码全部失效。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] New recovery codes",
                "Hello {account}!\n\nA new set of recovery codes was just made for your account; every "
                "earlier code no longer works." + _MFA_FOOTER["en"],
            ),
        },
        "mfa_recovery_used": {
            "zh-CN": (
                "【SproutGate】恢复码已被使用",
                "你好 {account}!\n\n刚刚有人用一个恢复码登录了你的账号,还剩 {left} 个恢复码。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] A recovery code was used",
                "Hello {account}!\n\nA recovery code was just used to sign in to your account; {left} "
                "remain." + _MFA_FOOTER["en"],
            ),
        },
        "mfa_recovery_low": {
            "zh-CN": (
                "【SproutGate】恢复码已被使用,仅剩 {left} 个",
                "你好 {account}!\n\n刚刚有人用一个恢复码登录了你的账号,只剩 {left} 个恢复码了。"
                "请在账号设置中生成一组新的恢复码:{link}" + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] A recovery code was used: {left} left",
                "Hello {account}!\n\nA recovery code was just used to sign in to your account; only "
                "{left} remain. Make a new set in your account settings: {link}" + _MFA_FOOTER["en"],
            ),
        },
        "mfa_reset": {
            "zh-CN": (
                "【SproutGate】管理员已重置你的两步验证",
                "你好 {account}!\n\n管理员刚刚关闭了你账号的全部两步验证方式(验证器应用、恢复码和通行密钥),"
                "所有已登录的会话都已退出。现在只用密码即可登录,建议登录后重新开启两步验证。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] An administrator reset your second factors",
                "Hello {account}!\n\nAn administrator just turned off every second factor of your "
                "account (authenticator app, recovery codes and passkeys) and signed out all your sessions. "
                "Your password alone signs you in now; turn a second factor on again once you are in."
                + _MFA_FOOTER["en"],
            ),
        },
    }
)

# -- passkeys (domain/passkeys) ------------------------------------------------------------------
MAIL.update(
    {
        "passkey_added": {
            "zh-CN": (
                "【SproutGate】已添加通行密钥",
                "你好 {account}!\n\n你的账号刚刚添加了通行密钥“{name}”,现在可以用它直接登录。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] A passkey was added",
                'Hello {account}!\n\nThe passkey "{name}" was just added to your account; it can '
                "sign you in by itself now." + _MFA_FOOTER["en"],
            ),
        },
        "passkey_removed": {
            "zh-CN": (
                "【SproutGate】已移除通行密钥",
                "你好 {account}!\n\n你的账号刚刚移除了通行密钥“{name}”,其他已登录的会话都已退出。"
                + _MFA_FOOTER["zh-CN"],
            ),
            "en": (
                "[SproutGate] A passkey was removed",
                'Hello {account}!\n\nThe passkey "{name}" was just removed from your account, and '
                "your other sessions were signed out." + _MFA_FOOTER["en"],
            ),
        },
    }
)


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
MAIL.update(
    {
        "primary_change_code": {
            "zh-CN": (
                "【SproutGate】更换主邮箱验证码 {code}",
                "你好!\n\n你正在把账号 {account} 的主邮箱换成这个邮箱,验证码是:{code}\n"
                "{minutes} 分钟内有效。\n\n如果不是你本人操作,请忽略这封邮件,什么都不会改变。",
            ),
            "en": (
                "[SproutGate] Your code to change your email is {code}",
                "Hello!\n\nYou are making this address the primary address of the account "
                "{account}. Your code is: {code}\nIt is valid for {minutes} {minutes:minute|minutes}."
                "\n\nIf you did not ask for this, ignore this email; nothing changes.",
            ),
        },
        "primary_change_taken": {
            "zh-CN": (
                "【SproutGate】有人尝试使用你的邮箱",
                "你好!\n\n有人尝试把这个邮箱({email})设为另一个 SproutGate 账号的主邮箱,"
                "但它已经属于一个账号,因此没有发送验证码,什么也没有改变。\n\n如果不是你本人操作,请忽略这封邮件。",
            ),
            "en": (
                "[SproutGate] Someone tried to use your email",
                "Hello!\n\nSomeone tried to make this address ({email}) the primary address of another "
                "SproutGate account. It already belongs to an account, so no code was sent and nothing "
                "changed.\n\nIf it was not you, ignore this email.",
            ),
        },
        "primary_changed": {
            "zh-CN": (
                "【SproutGate】你的账号更换了主邮箱",
                "你好 {account}!\n\n你账号的主邮箱刚刚从这个邮箱换成了 {email}。"
                "这个邮箱不能再登录,也不会再收到重置密码的验证码。\n"
                "如果不是你本人操作,请立即联系管理员。",
            ),
            "en": (
                "[SproutGate] The email of your account was changed",
                "Hello {account}!\n\nThe primary address of your account was just changed from this "
                "address to {email}. This address no longer signs in or receives password reset "
                "codes.\nIf this was not you, contact the administrator now.",
            ),
        },
    }
)


def mail(kind: str, lang: str, **params: Any) -> tuple[str, str]:
    entry = MAIL[kind].get(lang) or MAIL[kind][DEFAULT_LANG]
    return _formatter.format(entry[0], **params), _formatter.format(entry[1], **params)
