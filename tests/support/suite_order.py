"""The order in which `make test` hands out the test files to pytest-xdist's workers
(tests/conftest.py sorts the collected tests by ``LONG_FIRST``; docs/decisions/parallel-tests.md).
Longest first, so that no worker starts a long file while the others are nearly done."""

from __future__ import annotations

# Paths below tests/: the files that took longest (20 s or more of the tests' own wall time,
# longest first, measured with `-n 3 --dist loadfile` on the 2-core machine, added up per file:
# docs/decisions/parallel-tests.md), then folders whose other files take long.
LONG_FILES = [
    "oidc/test_oidc_flows.py",
    "web/test_passkeys_http.py",
    "test_schemathesis.py",
    "v1/test_reset_timing.py",
    "v1/test_server_process.py",
    "oidc/test_oidc_real_server.py",
    "web/test_pages_browser.py",
    "web/test_pages_phone.py",
    "rp/test_rp_spa.py",
    "api/test_metrics_workers.py",
    "backends/test_two_instances.py",
    "backends/test_mfa_key_rotation.py",
    "gate/test_gate_auth.py",
    "agent/test_agent_chats.py",
    "oidc/test_backchannel_logout.py",
    "web/test_passkeys_browser.py",
    "gate/test_self_service_server.py",  # 60 s before its servers were shared per module
    "oidc/test_oidc_demands.py",
    "web/test_connected_apps_browser.py",
    "backends/test_private_files.py",
    "web/test_account_mfa_http.py",
    "agent/test_agent_e2e.py",
    "backends/test_first_start.py",
    "web/test_account_self_service_browser.py",
    "security/test_notices.py",
    "rp/test_rp_sso.py",
    "oidc/test_oidc_hardening.py",
    "backends/test_outages.py",
    "oidc/test_end_session.py",
    "rp/test_rp_authlib.py",
    "v1/test_v1_self_service.py",
    "web/test_console_sessions.py",
    "web/test_pages_takeover_browser.py",
    "security/test_pre_account_hijack.py",
    "backends/test_mail_delivery.py",
    "v1/test_v1_leaving.py",
    "security/test_second_step_ends_with_password.py",
    "v1/test_v1_mfa.py",
]
LONG_FOLDERS = ["backends", "rp", "web", "api", "gate", "oidc", "security"]
LONG_FIRST = {path: rank for rank, path in enumerate([*LONG_FILES, *LONG_FOLDERS])}
