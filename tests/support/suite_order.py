"""The order in which `make test` hands out the test files to pytest-xdist's workers
(tests/conftest.py sorts the collected tests by ``LONG_FIRST``; docs/decisions/parallel-tests.md).
Longest first, so that no worker starts a long file while the others are nearly done."""

from __future__ import annotations

# Paths below tests/: every file that took 8 s or more of the tests' own wall time, longest first
# (measured with `-n 3 --dist loadfile` on the 2-core machine, two runs averaged, added up per
# file: docs/decisions/parallel-tests.md). The rest, some 70 files of a few seconds each, then
# fill the workers' last minutes evenly. A new file lands after these, its folder first when
# the folder holds long files.
LONG_FILES = [
    "test_schemathesis.py",
    "web/test_passkeys_http.py",
    "oidc/test_oidc_flows.py",
    "v1/test_reset_timing.py",
    "v1/test_server_process.py",
    "oidc/test_oidc_real_server.py",
    "web/test_pages_browser.py",
    "gate/test_self_service_server.py",
    "backends/test_private_files.py",
    "gate/test_gate_auth.py",
    "backends/test_two_instances.py",
    "web/test_pages_phone.py",
    "oidc/test_end_session.py",
    "api/test_metrics_workers.py",
    "web/test_passkeys_browser.py",
    "oidc/test_oidc_demands.py",
    "rp/test_rp_spa.py",
    "backends/test_mfa_key_rotation.py",
    "agent/test_agent_chats.py",
    "oidc/test_backchannel_logout.py",
    "v1/test_v1_self_service.py",
    "backends/test_first_start.py",
    "agent/test_agent_e2e.py",
    "security/test_pre_account_hijack.py",
    "web/test_connected_apps_browser.py",
    "web/test_account_self_service_browser.py",
    "web/test_account_mfa_http.py",
    "v1/test_v1_mfa.py",
    "web/test_console_sessions.py",
    "security/test_notices.py",
    "v1/test_v1_users.py",
    "rp/test_rp_authlib.py",
    "backends/test_mail_delivery.py",
    "rp/test_rp_sso.py",
    "oidc/test_oidc_hardening.py",
    "backends/test_outages.py",
    "web/test_pages_takeover_browser.py",
    "v1/test_v1_leaving.py",
    "security/test_second_step_ends_with_password.py",
    "v1/test_v1_signup.py",
    "web/test_account_mfa_browser.py",
    "backends/test_engines.py",
    "v1/test_v1_sessions.py",
    "rp/test_rp_apache.py",
    "security/test_codes_end_with_credentials.py",
    "gate/test_gate_import.py",
    "gate/test_gate_cross_face.py",
    "gate/test_gate_server.py",
    "gate/test_gate_admin.py",
    "security/test_recovery_channels.py",
    "oidc/test_backchannel_delivery.py",
    "gate/test_gate_mfa.py",
    "web/test_account_leaving_browser.py",
    "oidc/test_apps_in_export_and_sessions.py",
    "web/test_oidc_demands_browser.py",
    "web/test_passkeys_metrics.py",
    "v1/test_v1_mail.py",
    "v1/test_v1_password_reset.py",
    "gate/test_admin_user_locale.py",
    "v1/test_lockout.py",
    "web/test_console_clients_browser.py",
    "web/test_account_self_service_http.py",
]
LONG_FOLDERS = ["backends", "rp", "web", "api", "gate", "oidc", "security"]
LONG_FIRST = {path: rank for rank, path in enumerate([*LONG_FILES, *LONG_FOLDERS])}
