"""Text of the hosted pages in zh-CN and English. Error texts come from sproutgate.i18n."""

from __future__ import annotations

from typing import Any

from sproutgate.i18n import DEFAULT_LANG, render

PAGES: dict[str, tuple[str, str]] = {
    # key: (zh-CN, en)
    "brand": ("SproutGate", "SproutGate"),
    "tagline": ("统一账号中心", "Your account center"),
    "skip": ("跳到主要内容", "Skip to main content"),
    "nav.account": ("我的账号", "Account"),
    "nav.chat": ("助手", "Assistant"),
    "nav.admin": ("管理后台", "Admin"),
    "nav.login": ("登录", "Sign in"),
    "nav.register": ("注册", "Sign up"),
    "nav.logout": ("退出登录", "Sign out"),
    "nav.language": ("语言", "Language"),
    "nav.menu": ("菜单", "Menu"),
    "working": ("请稍候…", "Working…"),
    "optional": ("选填", "optional"),
    "footer": ("由 SproutGate 提供", "Powered by SproutGate"),
    # sign-in
    "login.title": ("登录", "Sign in"),
    "login.lead": ("使用账号名或邮箱登录。", "Use your account name or email address."),
    "login.identifier": ("账号或邮箱", "Account or email"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.forgot": ("忘记密码?", "Forgot your password?"),
    "login.no_account": ("还没有账号?", "No account yet?"),
    "login.register": ("注册一个", "Create one"),
    "login_mfa.title": ("两步验证", "Two-step verification"),
    "login_mfa.lead": (
        "密码正确。请输入验证器应用中显示的 6 位验证码。",
        "Your password is right. Enter the 6-digit code your authenticator app shows.",
    ),
    "login_mfa.code": ("验证器应用中的验证码", "Code from your authenticator app"),
    "login_mfa.hint": (
        "6 位数字,每 30 秒更新一次。",
        "6 digits; a new one every 30 seconds.",
    ),
    "login_mfa.submit": ("验证并登录", "Verify and sign in"),
    "login_mfa.restart": ("重新输入密码", "Start over with the password"),
    # -- two-step verification: the recovery-code path of the sign-in (login_mfa.html)
    "login_mfa.lost_phone": ("手机不在身边?使用恢复码", "No phone at hand? Use a recovery code"),
    "login_mfa.recovery_lead": (
        "输入开启两步验证时保存的恢复码之一(如 k7qm-3xth-9wpa)。"
        "每个恢复码只能用一次,用后我们会发邮件通知你。",
        "Enter one of the recovery codes you saved when you turned two-step verification on "
        "(like k7qm-3xth-9wpa). Each works once, and we mail you when one is used.",
    ),
    "login_mfa.recovery_code": ("恢复码", "Recovery code"),
    "login_mfa.recovery_submit": ("用恢复码登录", "Sign in with a recovery code"),
    # sign-up
    "register.title": ("注册", "Create your account"),
    "register.lead": (
        "填写信息后,我们会向你的邮箱发送 {length} 位验证码。",
        "We will email you a {length}-digit code to confirm your address.",
    ),
    "register.email": ("邮箱", "Email"),
    "register.username": ("昵称", "Display name"),
    "register.account": ("账号名", "Account name"),
    "register.account_hint": (
        "{min}–{max} 个字母、数字、下划线、连字符或点;账号名是公开的,注册后不能修改。",
        "{min} to {max} letters, digits, underscores, hyphens or dots; public and permanent.",
    ),
    "register.password": ("密码", "Password"),
    "register.password_hint": (
        "至少 {min} 位,不要用常见密码。",
        "At least {min} characters, not a common one.",
    ),
    "register.submit": ("发送验证码", "Send the code"),
    "register.have_account": ("已有账号?", "Already have an account?"),
    "register.login": ("直接登录", "Sign in"),
    "set_password.title": ("设置密码", "Choose your password"),
    "set_password.lead": (
        "你的账号已创建。注册等待验证期间,有人用同一个邮箱提交了另一个密码,所以为了安全,"
        "这个账号还没有密码。请现在设置一个(我们也把设置密码的验证码发到了你的邮箱)。",
        "Your account is ready. While the sign-up waited for its code, someone sent another "
        "password for this address, so to be safe the account has no password yet. Choose one "
        "now (we also mailed you a code to do it later).",
    ),
    "set_password.password": ("新密码", "New password"),
    "set_password.submit": ("设置密码", "Set password"),
    "set_password.expired": (
        "距离登录已经太久,请用邮件里的验证码或“忘记密码”来设置密码。",
        "Too much time has passed since you signed in: set the password with the mailed code "
        'or "Forgot your password?".',
    ),
    "verify.title": ("输入验证码", "Enter your code"),
    "verify.lead": (
        "验证码已发送到 {email}(如果该邮箱可以注册)。{minutes} 分钟内有效。",
        "If {email} can be used, a code is on its way. It is valid for {minutes} {minutes:minute|minutes}.",
    ),
    "verify.email": ("邮箱", "Email"),
    "verify.code": ("{length} 位验证码", "{length}-digit code"),
    "verify.submit": ("完成注册", "Create account"),
    "verify.resend": ("重新发送验证码", "Send a new code"),
    # reset
    "forgot.title": ("重置密码", "Reset your password"),
    "forgot.lead": (
        "输入注册邮箱,我们会发送一个 {length} 位验证码。",
        "Enter your email address and we will send you a {length}-digit code.",
    ),
    "forgot.email": ("邮箱", "Email"),
    "forgot.submit": ("发送验证码", "Send the code"),
    "forgot.back": ("返回登录", "Back to sign in"),
    "reset.title": ("设置新密码", "Choose a new password"),
    "reset.lead": (
        "如果 {email} 已注册,验证码已发送,{minutes} 分钟内有效。",
        "If {email} is registered, a code is on its way. It is valid for {minutes} {minutes:minute|minutes}.",
    ),
    "reset.code": ("{length} 位验证码", "{length}-digit code"),
    "reset.password": ("新密码", "New password"),
    "reset.submit": ("重置密码", "Reset password"),
    # notices shown after a redirect
    "notice.password_reset": (
        "密码已重置,请用新密码登录。",
        "Your password was reset. Sign in with the new one.",
    ),
    "notice.logged_out": ("你已退出登录。", "You are signed out."),
    "notice.profile_saved": ("资料已保存。", "Your profile was saved."),
    "notice.password_changed": (
        "密码已修改,其他设备上的登录已退出。",
        "Your password was changed and your other sessions were signed out.",
    ),
    "notice.email_code_sent": (
        "如果该邮箱可以使用,验证码已发送到 {email}。",
        "If {email} can be used, a code was sent to it.",
    ),
    "notice.email_added": ("辅助邮箱已验证并添加。", "The address was verified and added."),
    "notice.session_revoked": ("该会话已退出。", "That session was signed out."),
    "notice.user_created": ("用户已创建。", "The user was created."),
    "notice.user_saved": ("用户已保存。", "The user was saved."),
    "notice.user_deleted": ("用户已删除。", "The user was deleted."),
    "notice.code_resent": (
        "如果这个邮箱正在注册,新的验证码已发送。",
        "If this address has a pending sign-up, a new code was sent.",
    ),
    "notice.welcome": ("欢迎!你的账号已创建。", "Welcome! Your account is ready."),
    "notice.password_set": ("密码已设置。", "Your password is set."),
    "notice.email_removed": (
        "已移除辅助邮箱 {email}。",
        "The address {email} was removed.",
    ),
    "notice.account_deleted": (
        "你的账号已删除,所有登录都已退出。",
        "Your account was deleted and every session was signed out.",
    ),
    # -- two-step verification on the account page (account_mfa*.html, web/mfa_pages.py)
    "notice.mfa_disabled": (
        "验证器应用已关闭,恢复码已作废,其他设备上的登录已退出。",
        "The authenticator app is off, its recovery codes are void, and your other sessions were signed out.",
    ),
    "mfa.heading": ("两步验证", "Two-step verification"),
    "mfa.lead": (
        "登录时除了密码,还需要输入验证器应用"
        "(如 Google Authenticator、Microsoft Authenticator、1Password)中的验证码。",
        "Besides your password, signing in asks for a code from an authenticator app (such as "
        "Google Authenticator, Microsoft Authenticator or 1Password).",
    ),
    "mfa.on": ("已开启", "On"),
    "mfa.on_detail": (
        "登录时需要验证器应用中的验证码。",
        "Signing in asks for a code from your authenticator app.",
    ),
    "mfa.off": ("未开启", "Off"),
    "mfa.off_detail": ("目前只用密码登录。", "Your password alone signs you in."),
    "mfa.codes_left": (
        "剩余 {left} 个未用的恢复码。",
        "{left} unused recovery {left:code|codes} left.",
    ),
    "mfa.start": ("设置验证器应用", "Set up an authenticator app"),
    "mfa.password_needed": (
        "距离登录已经超过一段时间,请输入当前密码。",
        "Enter your current password: you signed in a while ago.",
    ),
    "mfa.code_or_recovery": ("验证码或恢复码", "Code or recovery code"),
    "mfa.new_codes": ("重新生成恢复码", "New recovery codes"),
    "mfa.new_codes_lead": (
        "生成一组新的恢复码,旧的全部作废。",
        "Get a new set of recovery codes; every old one stops working.",
    ),
    "mfa.new_codes_submit": ("生成新的恢复码", "Get new codes"),
    "mfa.turn_off": ("关闭两步验证", "Turn off"),
    "mfa.turn_off_lead": (
        "关闭后只需密码即可登录,恢复码作废,其他设备上的登录会退出。",
        "Your password alone will sign you in again, the recovery codes stop working and your "
        "other sessions are signed out.",
    ),
    "mfa.turn_off_submit": ("关闭验证器应用", "Turn off the authenticator app"),
    "mfa.enrol_title": ("设置验证器应用", "Set up an authenticator app"),
    "mfa.enrol_step_scan": (
        "用验证器应用扫描下面的二维码。",
        "Scan this QR code with your authenticator app.",
    ),
    "mfa.enrol_step_code": (
        "输入应用显示的 6 位验证码,确认设置成功。",
        "Enter the 6-digit code the app shows to confirm it works.",
    ),
    "mfa.qr_label": ("验证器应用的二维码", "QR code for your authenticator app"),
    "mfa.cannot_scan": ("无法扫描?手动输入密钥", "Can't scan it? Type the key in instead"),
    "mfa.type_secret": (
        "在应用中选择“手动输入”,填入下面的密钥(空格可省略):",
        'In the app, choose "enter a setup key" and type this key (the spaces do not matter):',
    ),
    "mfa.secret_account": ("账号", "Account"),
    "mfa.secret_kind": ("类型", "Type"),
    "mfa.secret_kind_value": ("基于时间(TOTP),6 位,30 秒", "Time-based (TOTP), 6 digits, 30 seconds"),
    "mfa.first_code": ("应用显示的验证码", "Code from the app"),
    "mfa.first_code_hint": (
        "{minutes} 分钟内完成设置,否则需要重新开始。",
        "Finish within {minutes} minutes, or start again.",
    ),
    "mfa.confirm": ("确认并开启", "Confirm and turn on"),
    "mfa.enabled_heading": ("两步验证已开启", "Two-step verification is on"),
    "mfa.regenerated_heading": ("新的恢复码", "Your new recovery codes"),
    "mfa.codes_lead": (
        "手机丢失或不在身边时,可以用这些恢复码代替验证码登录,每个只能用一次。",
        "If you lose your phone or it is not at hand, each of these codes signs you in once in "
        "place of an app code.",
    ),
    "mfa.codes_once": (
        "这些恢复码只显示这一次。请下载或抄写下来,放在安全的地方。",
        "These codes are shown only this once. Download or write them down and keep them somewhere safe.",
    ),
    "mfa.download": ("下载恢复码(.txt)", "Download the codes (.txt)"),
    "mfa.saved_them": ("我已保存,返回账号", "I saved them: back to my account"),
    "mfa.codes_file_title": ("SproutGate 恢复码:{account}", "SproutGate recovery codes for {account}"),
    "mfa.codes_file_note": (
        "每个恢复码只能使用一次。生成新的一组后,这些恢复码全部作废。",
        "Each code works once. Getting a new set voids all of these.",
    ),
    # account
    "account.title": ("我的账号", "Your account"),
    "account.profile": ("个人资料", "Profile"),
    "account.account": ("账号名", "Account"),
    "account.email": ("主邮箱", "Primary email"),
    "account.level": ("等级", "Level"),
    "account.coins": ("萌芽币", "Sprout coins"),
    "account.joined": ("注册于", "Member since"),
    "account.no_bio": ("还没有简介。", "No bio yet."),
    "account.edit_profile": ("编辑资料", "Edit profile"),
    "account.username": ("昵称", "Display name"),
    "account.avatar_url": ("头像链接", "Avatar URL"),
    "account.avatar_hint": (
        "http(s) 图片链接,留空则使用首字母头像。",
        "An http(s) image link; empty shows your initial.",
    ),
    "account.phone": ("电话", "Phone"),
    "account.bio": ("简介", "Bio"),
    "account.bio_hint": ("支持 Markdown,最多 {max} 个字符。", "Markdown, up to {max} characters."),
    "account.mail_language": ("邮件语言", "Language of emails"),
    "account.mail_language_hint": (
        "验证码和安全通知邮件使用这种语言,无论由谁触发。",
        "Codes and security notices are mailed to you in this language, whoever causes them.",
    ),
    "account.save": ("保存资料", "Save profile"),
    "account.password": ("修改密码", "Change password"),
    "account.current_password": ("当前密码", "Current password"),
    "account.new_password": ("新密码", "New password"),
    "account.change_password": ("修改密码", "Change password"),
    "account.emails": ("辅助邮箱", "Secondary emails"),
    "account.emails_lead": (
        "验证过的辅助邮箱也可以用来登录。",
        "Verified secondary addresses can also be used to sign in.",
    ),
    "account.no_emails": ("还没有辅助邮箱。", "No secondary addresses yet."),
    "account.add_email": ("添加邮箱", "Add address"),
    "account.new_email": ("新邮箱", "New address"),
    "account.verify_email": ("验证", "Verify"),
    "account.email_password": ("当前密码", "Current password"),
    "account.email_password_hint": (
        "登录后 {minutes} 分钟内可以不填。",
        "Not needed within {minutes} minutes of signing in.",
    ),
    "account.remove_email": ("移除", "Remove"),
    "account.remove_email_label": ("移除 {email}", "Remove {email}"),
    "account.email_code": ("发送到 {email} 的验证码", "Code sent to {email}"),
    "account.sessions": ("登录设备", "Active sessions"),
    "account.sessions_lead": (
        "这些设备和应用当前登录着你的账号。",
        "Devices and apps signed in to your account.",
    ),
    "account.this_device": ("当前设备", "This device"),
    "account.signed_in": ("登录于 {time}", "Signed in {time}"),
    "account.from_ip": ("IP {ip}", "IP {ip}"),
    "account.sign_out": ("退出", "Sign out"),
    "account.sign_out_all": ("退出所有设备", "Sign out everywhere"),
    "account.kind.web": ("网页", "Web"),
    "account.kind.runtime": ("应用", "App"),
    "account.kind.gate": ("SproutGate 应用", "SproutGate app"),
    "account.data": ("你的数据", "Your data"),
    "account.data_lead": (
        "下载我们保存的关于你的全部数据(JSON):资料、邮箱、登录记录、操作记录和助手对话,不含密码和验证码。",
        "Download everything we store about you as JSON: profile, addresses, sessions, audit "
        "events and assistant conversations; never your password or codes.",
    ),
    "account.export": ("下载我的数据", "Download my data"),
    "account.delete": ("删除账号", "Delete account"),
    "account.delete_lead": (
        "永久删除你的账号和数据。需要输入密码确认。",
        "Permanently delete your account and its data. You will confirm with your password.",
    ),
    "account.delete_start": ("删除账号…", "Delete account…"),
    # deleting the account (its own page: the confirmation step)
    "delete.title": ("删除账号 {account}?", "Delete the account {account}?"),
    "delete.lead": (
        "删除后无法恢复。在删除的同一时刻:",
        "This cannot be undone. The moment you confirm:",
    ),
    "delete.sessions": (
        "所有设备和应用上的登录都会退出,所有令牌立即失效;",
        "every session on every device and app ends, and every token stops working;",
    ),
    "delete.data": (
        "你的资料、邮箱、待用的验证码和助手对话都会删除;",
        "your profile, addresses, pending codes and assistant conversations are deleted;",
    ),
    "delete.hold": (
        "你的邮箱和账号名在 {days} 天内不能被任何人注册,之后才会释放;",
        "your addresses and account name cannot be registered by anyone for {days} days, then "
        "become free again;",
    ),
    "delete.hold_none": (
        "你的邮箱和账号名会立即释放,可以被重新注册;",
        "your addresses and account name become free to register again at once;",
    ),
    "delete.notice": (
        "我们会给 {email} 发送一封通知邮件。操作记录只保留“账号已删除”这一事实,不保留你的资料。",
        "a notice goes to {email}. The audit log keeps only that the account was deleted, not your profile.",
    ),
    "delete.export_first": (
        "想保留一份数据?请先下载。",
        "Want a copy of your data? Download it first.",
    ),
    "delete.password": ("输入密码以确认", "Your password, to confirm"),
    "delete.submit": ("永久删除我的账号", "Delete my account"),
    "delete.cancel": ("取消", "Cancel"),
    # admin
    "admin.title": ("管理后台", "Admin console"),
    "admin.signin_lead": (
        "使用管理员 Token 登录,或以管理员身份登录账号。",
        "Sign in with the admin token, or sign in as a user with the admin role.",
    ),
    "admin.token": ("管理员 Token", "Admin token"),
    "admin.token_submit": ("进入后台", "Open the console"),
    "admin.as_user": ("以管理员账号登录", "Sign in as an admin user"),
    "admin.signed_in_as": ("当前身份:{actor}", "Signed in as {actor}"),
    "admin.token_actor": ("管理员 Token", "the admin token"),
    "admin.sign_out": ("退出后台", "Leave the console"),
    "admin.users": ("用户", "Users"),
    "admin.audit": ("操作记录", "Audit log"),
    "admin.search": ("搜索账号、昵称或邮箱", "Search account, name or email"),
    "admin.search_submit": ("搜索", "Search"),
    "admin.total": ("共 {total} 个用户", "{total} {total:user|users}"),
    "admin.col.account": ("账号", "Account"),
    "admin.col.username": ("昵称", "Name"),
    "admin.col.email": ("邮箱", "Email"),
    "admin.col.level": ("等级", "Level"),
    "admin.col.coins": ("萌芽币", "Coins"),
    "admin.col.role": ("角色", "Role"),
    "admin.col.status": ("状态", "Status"),
    "admin.col.created": ("注册时间", "Created"),
    # -- second factors in the console (admin_users.html, admin_user_edit.html)
    "admin.col.mfa": ("两步验证", "Two-step"),
    "admin.mfa.totp": ("验证器应用", "App"),
    "admin.mfa.totp_long": ("验证器应用", "an authenticator app"),
    "admin.mfa.passkeys": ("{count} 个通行密钥", "{count} {count:passkey|passkeys}"),
    "admin.mfa.none": ("未开启", "Off"),
    "admin.mfa.heading": ("两步验证", "Second factors"),
    "admin.mfa.lead_on": (
        "此用户已开启:{factors}。用户丢失手机且没有恢复码时,可以在这里重置:"
        "所有第二因素和恢复码都会删除,其所有会话退出,并会收到一封通知邮件。此操作会记入操作记录。",
        "This user has: {factors}. When they lost their phone and their recovery codes, reset "
        "here: every second factor and recovery code is removed, all of their sessions end and "
        "they get a notice mail. The reset is recorded in the audit log.",
    ),
    "admin.mfa.lead_off": ("此用户没有开启两步验证。", "This user has no second factor."),
    "admin.mfa.reset": ("重置两步验证", "Reset second factors"),
    "notice.mfa_reset": ("已重置该用户的两步验证。", "The user's second factors were reset."),
    "admin.field.reset_mfa": ("重置两步验证", "second factors reset"),
    "admin.action.user.mfa.reset": ("重置两步验证", "Reset second factors"),
    "admin.col.actions": ("操作", "Actions"),
    "admin.active": ("正常", "Active"),
    "admin.disabled": ("已停用", "Disabled"),
    "admin.edit": ("编辑", "Edit"),
    "admin.delete": ("删除", "Delete"),
    "admin.prev": ("上一页", "Previous"),
    "admin.next": ("下一页", "Next"),
    "admin.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "admin.no_users": ("没有匹配的用户。", "No users match."),
    "admin.create": ("新建用户", "New user"),
    "admin.create_submit": ("创建用户", "Create user"),
    "admin.edit_title": ("编辑用户 {account}", "Edit {account}"),
    "admin.level": ("等级", "Level"),
    "admin.coins": ("萌芽币", "Sprout coins"),
    "admin.role": ("角色", "Role"),
    "admin.role.user": ("普通用户", "User"),
    "admin.role.admin": ("管理员", "Admin"),
    "admin.disabled_label": (
        "停用此账号(会立即退出其所有会话)",
        "Disabled (ends all of their sessions at once)",
    ),
    "admin.save": ("保存", "Save"),
    "admin.cancel": ("取消", "Cancel"),
    "admin.back": ("返回用户列表", "Back to users"),
    "admin.delete_title": ("删除用户 {account}?", "Delete {account}?"),
    "admin.delete_lead": (
        "将永久删除 {account}({email})及其所有会话、验证码和助手对话,无法恢复;"
        "其邮箱和账号名在保留期内不能被注册,并会收到一封通知邮件。",
        "This permanently deletes {account} ({email}) and ends their sessions, codes and assistant "
        "conversations. It cannot be undone. Their addresses and account name stay unavailable for "
        "the hold period, and the address gets a notice.",
    ),
    "admin.delete_confirm": ("确认删除", "Delete permanently"),
    "admin.audit.time": ("时间", "Time"),
    "admin.audit.actor": ("操作者", "Who"),
    "admin.audit.action": ("操作", "What"),
    "admin.audit.target": ("对象", "Target"),
    "admin.audit.details": ("详情", "Details"),
    "admin.audit.empty": ("还没有记录。", "Nothing recorded yet."),
    "admin.audit.ip": ("IP 地址", "IP address"),
    "admin.actor.cli": ("命令行", "command line"),
    "admin.deleted_by.self": ("用户本人删除", "deleted by the user"),
    "admin.deleted_by.admin": ("管理员删除", "deleted by an administrator"),
    "admin.action.user.create": ("创建用户", "Created a user"),
    "admin.action.user.update": ("修改用户", "Changed a user"),
    "admin.action.user.delete": ("删除用户", "Deleted a user"),
    "admin.action.user.role.admin": ("设为管理员", "Made an admin"),
    "admin.action.user.role.user": ("取消管理员", "Made a plain user"),
    "admin.action.import.sproutgate": ("导入 SproutGate 数据", "Imported SproutGate data"),
    "admin.action.admin_token.rotate": ("更换管理员 Token", "Replaced the admin token"),
    # -- apps: OAuth / OpenID Connect clients (issue 12) -----------------------------------
    "admin.clients": ("应用", "Apps"),
    "admin.action.client.create": ("登记应用", "Registered an app"),
    "admin.action.client.update": ("修改应用", "Changed an app"),
    "admin.action.client.rotate_secret": ("更换应用密钥", "Replaced an app's secret"),
    "admin.action.client.delete": ("删除应用", "Removed an app"),
    "admin.field.name": ("名称", "name"),
    "admin.field.public": ("公开客户端", "public client"),
    "admin.field.first_party": ("自家应用", "first-party"),
    "admin.field.redirect_uris": ("回调地址", "redirect URIs"),
    "admin.field.post_logout_redirect_uris": ("退出后回调地址", "post-logout redirect URIs"),
    "admin.field.backchannel_logout_uri": ("后端退出通知地址", "back-channel logout URI"),
    "admin.field.scopes": ("权限范围", "scopes"),
    "admin.field.grant_types": ("授权方式", "grant types"),
    "admin.field.client_secret": ("客户端密钥", "client secret"),
    "clients.lead": (
        "这些应用可以通过 SproutGate 让用户登录(OpenID Connect)。",
        "These apps may sign people in through SproutGate (OpenID Connect).",
    ),
    "clients.name": ("名称", "Name"),
    "clients.name_hint": ("用户在授权页看到的名称。", "The name people see on the consent page."),
    "clients.client_id": ("客户端 ID", "Client ID"),
    "clients.type": ("类型", "Type"),
    "clients.public": ("公开客户端", "Public"),
    "clients.confidential": ("机密客户端", "Confidential"),
    "clients.first_party": ("自家应用", "First-party"),
    "clients.none": ("还没有登记任何应用。", "No apps are registered yet."),
    "clients.create": ("登记应用", "Register an app"),
    "clients.create_submit": ("登记", "Register"),
    "clients.redirect_uris": ("回调地址", "Redirect URIs"),
    "clients.redirect_uris_hint": (
        "每行一个,须完全一致;https,或仅限本机的 http(127.0.0.1 / [::1] 的端口可变);不能带 #。",
        "One per line, matched exactly; https, or http on this machine only (any port on "
        "127.0.0.1 / [::1]); no #fragment.",
    ),
    "clients.one_per_line": ("每行一个。", "One per line."),
    "clients.post_logout_redirect_uris": ("退出后回调地址", "Post-logout redirect URIs"),
    "clients.backchannel_logout_uri": ("后端退出通知地址", "Back-channel logout URI"),
    "clients.backchannel_hint": (
        "用户会话结束时,SproutGate 向此地址发送退出令牌。",
        "SproutGate posts a logout token here when a person's session ends.",
    ),
    "clients.public_label": ("公开客户端(单页应用或手机应用)", "Public client (single-page or mobile app)"),
    "clients.public_hint": (
        "无法保管密钥的应用:没有密钥,只用 PKCE。登记后不可更改。",
        "For apps that cannot keep a secret: no secret, PKCE only. Fixed once registered.",
    ),
    "clients.first_party_label": ("自家应用", "First-party app"),
    "clients.first_party_hint": (
        "本系列自己的应用:用户无需在授权页确认。取消后,用户未确认过的授权随即失效。",
        "One of the family's own apps: people are not asked for consent. "
        "Turning it off ends the access people never consented to.",
    ),
    "clients.scopes": ("允许的权限范围", "Allowed scopes"),
    "clients.scope.openid": ("用户 ID", "the user's id"),
    "clients.scope.profile": ("昵称、账号名、头像", "name, account name, picture"),
    "clients.scope.email": ("邮箱", "email address"),
    "clients.scope.offline_access": ("长期登录(refresh token)", "stay signed in (refresh tokens)"),
    "clients.scope.sproutgate": ("等级与萌芽币", "level and sprout coins"),
    "clients.grant_types": ("允许的授权方式", "Allowed grant types"),
    "clients.grant.authorization_code": ("用户登录(授权码 + PKCE)", "people sign in (code + PKCE)"),
    "clients.grant.refresh_token": ("刷新令牌", "refresh tokens"),
    "clients.grant.client_credentials": (
        "服务间调用(仅机密客户端)",
        "service to service (confidential only)",
    ),
    "clients.edit_title": ("编辑应用「{name}」", "Edit {name}"),
    "clients.secret": ("客户端密钥", "Client secret"),
    "clients.rotate_lead": (
        "生成新密钥后,旧密钥立即失效,请先准备好更新应用配置。",
        "A new secret stops the old one at once: be ready to update the app's configuration.",
    ),
    "clients.rotate": ("生成新密钥", "Replace the secret"),
    "clients.created_title": ("已登记应用「{name}」", "{name} is registered"),
    "clients.rotated_title": ("「{name}」的新密钥", "New secret for {name}"),
    "clients.secret_once": (
        "请立即复制密钥:它只显示这一次,SproutGate 只保存其哈希。",
        "Copy the secret now: it is shown only this once; SproutGate keeps only a hash of it.",
    ),
    "clients.public_no_secret": (
        "公开客户端没有密钥,使用 PKCE。",
        "A public client has no secret; it uses PKCE.",
    ),
    "clients.back": ("返回应用列表", "Back to apps"),
    "clients.delete_title": ("删除应用「{name}」?", "Remove {name}?"),
    "clients.delete_lead": (
        "应用 {name}({client_id})将无法再让用户登录,已发出的授权随之失效。",
        "{name} ({client_id}) can no longer sign people in; the grants it holds end with it.",
    ),
    "notice.client_saved": ("应用已保存。", "The app was saved."),
    "notice.client_saved_grants_ended": (
        "应用已保存。它不再是第一方应用:未经用户同意获得的授权已失效({count} 项),"
        "这些用户下次登录时将被询问是否同意。",
        "The app was saved and is no longer first-party: the grants it held without consent "
        "ended ({count}); those people will be asked to consent next time.",
    ),
    "notice.client_deleted": ("应用已删除。", "The app was removed."),
    "admin.field.account": ("账号名", "account name"),
    "admin.field.email": ("邮箱", "email"),
    "admin.field.password": ("密码", "password"),
    "admin.field.username": ("昵称", "display name"),
    "admin.field.level": ("等级", "level"),
    "admin.field.sprout_coins": ("萌芽币", "sprout coins"),
    "admin.field.secondary_emails": ("辅助邮箱", "secondary emails"),
    "admin.field.phone": ("电话", "phone"),
    "admin.field.avatar_url": ("头像链接", "avatar URL"),
    "admin.field.bio": ("简介", "bio"),
    "admin.field.disabled": ("停用", "disabled"),
    "admin.field.role": ("角色", "role"),
    "admin.yes": ("是", "yes"),
    "admin.no": ("否", "no"),
    "admin.not_admin": (
        "当前账号没有管理员权限。请使用管理员 Token。",
        "Your account is not an admin. Use the admin token instead.",
    ),
    # dev mailbox
    "mailbox.title": ("开发邮箱", "Dev mailbox"),
    "mailbox.lead": (
        "未配置 SMTP,邮件不会发出,而是保存在这里(仅本机可见),最新的在前。",
        "No SMTP server is configured: mail stays here instead (loopback only), newest first.",
    ),
    "mailbox.filter": ("按收件人筛选", "Filter by recipient"),
    "mailbox.filter_submit": ("筛选", "Filter"),
    "mailbox.empty": ("还没有邮件。", "No mail yet."),
    "mailbox.to": ("收件人", "To"),
    "mailbox.status": ("状态", "Status"),
    # chat
    "chat.title": ("助手", "Assistant"),
    "chat.sessions": ("会话", "Conversations"),
    "chat.new": ("新对话", "New conversation"),
    "chat.empty": (
        "问我关于你账号的任何事,比如“把我的简介改成……”。",
        "Ask about your account, e.g. “set my bio to …”.",
    ),
    "chat.placeholder": ("输入消息…", "Type a message…"),
    "chat.message": ("消息", "Message"),
    "chat.send": ("发送", "Send"),
    "chat.delete": ("删除对话", "Delete conversation"),
    "chat.no_sessions": ("还没有对话。", "No conversations yet."),
    "chat.noscript": ("助手需要启用 JavaScript。", "The assistant needs JavaScript."),
    "chat.you": ("你", "You"),
    "chat.assistant": ("助手", "Assistant"),
    "chat.tool": ("调用工具:{name}", "Using tool: {name}"),
    "chat.error": ("出错了:{error}", "Something went wrong: {error}"),
    "chat.untitled": ("未命名对话", "Untitled"),
    "chat.unavailable": (
        "这台服务器上暂时没有可用的助手。",
        "The assistant is not available on this server.",
    ),
    "chat.unconfigured_admin": (
        "用户看不到助手:还没有配置模型。设置下面三个环境变量(任何兼容 OpenAI 的聊天模型)后重启服务:",
        "Users do not see the assistant: no model is configured. Set these three environment "
        "variables (any OpenAI-compatible chat model) and restart the server:",
    ),
    "chat.unconfigured_admin_more": (
        "本地模型服务不需要 API Key;详见 docs/agent.md。",
        "A local model server needs no API key; docs/agent.md has the details.",
    ),
    "chat.back_to_account": ("返回我的账号", "Back to your account"),
    # generic
    # OpenID Connect: the consent page and the authorization error page (issue 12)
    "consent.title": ("{client} 想访问你的账号", "{client} wants to access your account"),
    "consent.lead": (
        "以 {account} 的身份登录 {client}。允许后，它可以读取:",
        "Signing in to {client} as {account}. If you allow it, it can read:",
    ),
    "consent.scope.openid": ("你的 SproutGate 账号标识", "Who you are (your SproutGate account id)"),
    "consent.scope.profile": ("你的昵称、账号名和头像", "Your display name, account name and picture"),
    "consent.scope.email": ("你的邮箱地址", "Your email address"),
    "consent.scope.offline_access": (
        "在你不使用它时保持访问，直到你断开它",
        "Keep access while you are away, until you disconnect it",
    ),
    "consent.scope.sproutgate": ("你的等级和萌芽币", "Your level and Sprout coins"),
    "consent.remembered": (
        "你的选择会被记住；可以随时在「我的账号」中断开这个应用。",
        "Your choice is remembered; you can disconnect this app on your account page at any time.",
    ),
    "consent.allow": ("允许", "Allow"),
    "consent.deny": ("拒绝", "Deny"),
    "oidc_error.title": ("无法登录到这个应用", "Cannot sign in to this app"),
    "oidc_error.lead": (
        "这个应用发来的登录请求无效(应用未注册或回调地址不符)，所以不会把你带回去。请联系该应用的开发者。",
        "The app's sign-in request is not valid (an unknown app or an unregistered return "
        "address), so you are not sent back to it. Please tell the app's developers.",
    ),
    "error.title": ("出错了", "Something went wrong"),
    "error.not_found_title": ("页面不存在", "Page not found"),
    "error.not_found": (
        "这个地址没有页面,可能是链接有误或已经过期。",
        "There is no page at this address. The link may be mistyped or out of date.",
    ),
    # A field's problem after its label: "Display name must be 1 to 30 characters long."
    "field.sentence": ("{label}{problem}。", "{label} {problem}."),
    "error.back": ("返回", "Go back"),
    "error.csrf_title": ("请重新提交", "Please try again"),
    # -- signing out at an app's request (/oauth2/logout, RP-Initiated Logout) and connected
    # apps on the account page (issue 12, H3) --------------------------------------------------
    "end_session.title": ("退出登录?", "Sign out?"),
    "end_session.lead": (
        "要退出 SproutGate 吗?通过它登录的应用也会收到通知。",
        "Sign out of SproutGate? Apps you signed in to with it are told as well.",
    ),
    "end_session.lead_app": (
        "{app} 请求让你退出 SproutGate。通过它登录的应用也会收到通知。",
        "{app} asks to sign you out of SproutGate. Apps you signed in to with it are told as well.",
    ),
    "end_session.submit": ("退出登录", "Sign out"),
    "end_session.stay": ("保持登录", "Stay signed in"),
    "end_session.done_title": ("已退出登录", "Signed out"),
    "end_session.done": (
        "你已退出 SproutGate。可以关闭此页面了。",
        "You are signed out of SproutGate. You can close this page.",
    ),
    "end_session.error_title": ("无法退出登录", "This sign-out request was not accepted"),
    "end_session.error": (
        "发起退出的应用发送的请求有误,请返回该应用重试。",
        "The app that sent you here made a request SproutGate cannot accept. Go back to the app "
        "and try again.",
    ),
    "account.apps": ("已连接的应用", "Connected apps"),
    "account.apps_lead": (
        "这些应用可以通过 SproutGate 读取你的账号信息。撤销后,应用的登录会结束,下次使用时需要重新授权。",
        "These apps may read your account through SproutGate. Revoking ends their access; they "
        "ask again the next time you use them.",
    ),
    "account.apps_none": ("还没有应用连接到你的账号。", "No apps are connected to your account."),
    "account.apps_scopes": ("可读取", "Can read"),
    "account.apps_since": ("授权于", "Connected on"),
    "account.apps_revoke": ("撤销", "Revoke"),
    "notice.app_revoked": ("该应用的访问已撤销。", "That app's access was revoked."),
}

# -- passkeys (web/passkey_pages.py, static/passkeys.js) -----------------------------------------
PAGES.update(
    {
        "passkey.or": ("或", "or"),
        "passkey.sign_in": ("使用通行密钥登录", "Sign in with a passkey"),
        "passkey.second_step": ("改用通行密钥", "Use a passkey instead"),
        "passkey.cancelled": (
            "通行密钥操作已取消或超时,未做任何更改。",
            "The passkey prompt was cancelled or timed out; nothing happened.",
        ),
        "passkey.unsupported": (
            "这个浏览器不支持通行密钥(或未启用 JavaScript)。",
            "This browser cannot use passkeys (or JavaScript is off).",
        ),
        "passkey.failed": (
            "通行密钥操作失败,请重试。",
            "The passkey did not work. Try again.",
        ),
        "passkey.exists": (
            "这个设备上已经有此账号的通行密钥了。",
            "This device already holds a passkey for this account.",
        ),
        "account.passkeys": ("通行密钥", "Passkeys"),
        "account.passkeys_lead": (
            "通行密钥保存在你的手机、电脑或安全密钥中,用指纹、面容或设备 PIN 解锁即可直接登录,无需密码。",
            "A passkey lives on your phone, computer or security key; unlock it with your "
            "fingerprint, face or device PIN to sign in without a password.",
        ),
        "account.no_passkeys": ("还没有通行密钥。", "No passkeys yet."),
        "account.passkey_added_at": ("添加于 {time}", "Added {time}"),
        "account.passkey_used_at": ("上次使用 {time}", "Last used {time}"),
        "account.passkey_never_used": ("尚未使用", "Not used yet"),
        "account.passkey_name": ("名称", "Name"),
        "account.passkey_name_hint": (
            "方便你认出它,例如“我的手机”。",
            'So you can tell it apart, like "My phone".',
        ),
        "account.add_passkey": ("添加通行密钥", "Add a passkey"),
        "account.remove_passkey": ("移除", "Remove"),
        "account.remove_passkey_label": ("移除通行密钥 {name}", "Remove the passkey {name}"),
        "notice.passkey_added": ("已添加通行密钥。", "The passkey was added."),
        "notice.passkey_removed": (
            "已移除通行密钥,其他设备上的登录已退出。",
            "The passkey was removed, and your other sessions were signed out.",
        ),
    }
)

# Self-service (issue 14): sessions with their last use, ending them from the console, and
# changing the primary address.
PAGES.update(
    {
        "account.last_used": ("最近使用 {time}", "Last used {time}"),
        "account.sign_out_others": ("退出其他设备", "Sign out other devices"),
        "account.change_email": ("更换主邮箱", "Change primary email"),
        "account.change_email_lead": (
            "验证码会发到新邮箱;验证后旧邮箱不能再登录,并会收到通知。",
            "A code goes to the new address; once it is verified the old one no longer signs in "
            "and gets a notice.",
        ),
        "account.change_email_new": ("新的主邮箱", "New primary address"),
        "account.change_email_password": ("当前密码", "Current password"),
        "account.change_email_send": ("发送验证码", "Send code"),
        "account.change_email_code": ("发送到 {email} 的验证码", "Code sent to {email}"),
        "account.change_email_verify": ("验证并更换", "Verify and change"),
        "notice.email_change_sent": (
            "如果该邮箱可以使用,验证码已发送到 {email}。",
            "If {email} can be used, a code was sent to it.",
        ),
        "notice.email_changed": ("主邮箱已更换为 {email}。", "Your primary address is now {email}."),
        "notice.other_sessions_revoked": ("其他设备都已退出。", "Your other sessions were signed out."),
        "notice.session_not_found": ("该会话已经结束。", "That session has already ended."),
        "admin.sessions": ("登录中的会话", "Active sessions"),
        "admin.no_sessions": ("没有登录中的会话。", "No active sessions."),
        "admin.session_end": ("结束", "End"),
        "admin.session_end_label": ("结束会话 {id}", "End session {id}"),
        "admin.session_created": ("登录于", "Signed in"),
        "admin.session_last_used": ("最近使用", "Last used"),
        "admin.session_device": ("设备", "Device"),
        "admin.session_ip": ("IP", "IP"),
        "notice.session_ended": ("会话已结束。", "The session was ended."),
        "admin.action.user.session.revoke": ("结束用户会话", "Ended a user's session"),
    }
)

_INDEX = {"zh-CN": 0, "en": 1}


def tr(key: str, lang: str, **params: Any) -> str:
    """The page text for ``key`` in ``lang`` (falling back to the default language)."""
    entry = PAGES.get(key)
    if entry is None:
        return key
    text = entry[_INDEX.get(lang, _INDEX[DEFAULT_LANG])]
    return render(text, **params) if params else text
