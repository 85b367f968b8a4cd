"""The token endpoint's limits count who proved themselves by what they proved: a confidential
client that authenticated with its secret is counted per client
(``SPROUTGATE_LIMIT_OIDC_TOKEN_PER_CLIENT``, its refreshes included), so the one backend address
it shares with its users, or with other apps behind the same egress, is not one budget for all;
public clients (anyone may name one, RFC 6749 §2.1) and requests whose client failed to
authenticate are counted per address as before, and failed authentications still count
against the address (``SPROUTGATE_LIMIT_CLIENT_AUTH_FAIL_PER_IP``), so guessing secrets stays
limited and no one can spend a client's budget without its secret. Both engines."""

from __future__ import annotations

import pytest
from logout_support import sign_in_to_app
from oidc_support import CALLBACK, make_person, pkce_pair, register_client

from support.harness import AppHarness

pytestmark = pytest.mark.both_engines

BACKEND = "198.51.100.10"  # the apps' shared egress address
ELSEWHERE = "198.51.100.77"


@pytest.fixture
async def h(make_harness, make_settings) -> AppHarness:
    return await make_harness(
        make_settings(
            admin_token="oidc-token-limits-admin",
            limit_oidc_token_per_ip="3/minute",
            limit_refresh_per_ip="2/minute",
            limit_oidc_token_per_client="5/minute",
            limit_client_auth_fail_per_ip="4/minute",
        )
    )


async def _service_client(h: AppHarness) -> tuple[str, str]:
    client_id, secret = await register_client(
        h,
        grant_types=("authorization_code", "refresh_token", "client_credentials"),
        scopes=("openid", "profile"),
    )
    assert secret is not None
    return client_id, secret


async def _credentials(h: AppHarness, ip: str, client_id: str, secret: str) -> int:
    async with h.new_client(ip=ip) as backend:
        r = await backend.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    return r.status_code


async def test_a_confidential_backend_is_not_held_to_its_address_budget(h):
    client_id, secret = await _service_client(h)
    person = await make_person(h)
    answer = await sign_in_to_app(h, h.new_client(), client_id, secret, person)
    token = answer["refresh_token"]
    async with h.new_client(ip=BACKEND) as backend:
        # More than the address's 3 token requests and 2 refreshes a minute, all answered.
        for _ in range(4):
            r = await backend.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": token},
                auth=(client_id, secret),
            )
            assert r.status_code == 200, r.text
            token = r.json()["refresh_token"]
        # Its own budget ends it: 5 a minute (the sign-in's code exchange counted too).
        r = await backend.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client_id, secret),
        )
        assert r.status_code == 429 and r.json()["error"] == "temporarily_unavailable", r.text
        assert int(r.headers["retry-after"]) > 0
    # Another confidential client behind the same address has a budget of its own.
    other_id, other_secret = await _service_client(h)
    assert [await _credentials(h, BACKEND, other_id, other_secret) for _ in range(5)] == [200] * 5
    assert await _credentials(h, BACKEND, other_id, other_secret) == 429


async def test_public_clients_and_failed_authentications_stay_counted_per_address(h):
    confidential, secret = await _service_client(h)
    public, _ = await register_client(h, public=True, scopes=("openid",))
    verifier, _ = pkce_pair()
    bogus = {
        "grant_type": "authorization_code",
        "code": "x",
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    async with h.new_client(ip=BACKEND) as crowd:
        # A public client names itself only: its requests spend the address's budget.
        for _ in range(3):
            r = await crowd.post("/oauth2/token", data={**bogus, "client_id": public})
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await crowd.post("/oauth2/token", data={**bogus, "client_id": public})
        assert r.status_code == 429
        # So does a request without a client, or with a wrong secret.
        r = await crowd.post("/oauth2/token", data={"grant_type": "client_credentials"})
        assert r.status_code == 429
        r = await crowd.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(confidential, "guess")
        )
        assert r.status_code == 429
    # The confidential client behind that same address is not held back by them.
    assert await _credentials(h, BACKEND, confidential, secret) == 200
    # Elsewhere, the public client starts afresh.
    async with h.new_client(ip=ELSEWHERE) as other:
        r = await other.post("/oauth2/token", data={**bogus, "client_id": public})
        assert r.status_code == 400


async def test_guessing_a_secret_is_limited_and_spends_nothing_of_the_clients_budget(h):
    client_id, secret = await _service_client(h)
    guesser = "203.0.113.66"
    async with h.new_client(ip=guesser) as attacker:
        answers = []
        for n in range(6):
            r = await attacker.post(
                "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, f"guess-{n}")
            )
            answers.append(r.status_code)
        # Failures count per address (401 while the address may still try, then 429) ...
        assert answers[0] == 401 and answers[-1] == 429, answers
        # ... and once refused, even the right secret from there is refused.
        r = await attacker.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert r.status_code == 429
    # None of it came out of the client's own budget (5 a minute).
    assert [await _credentials(h, BACKEND, client_id, secret) for _ in range(5)] == [200] * 5


async def test_others_failing_behind_the_same_address_do_not_lock_out_a_known_backend(h):
    """A cloud NAT: the backend of a confidential app and someone guessing share one address.
    Once the app authenticated from there, failures naming other clients (or none) spend the
    address's budget but do not refuse the app's correct secret; guessing the app's own secret
    there stays limited (and then refuses it there too, as for a sign-in from one address). An
    app that never authenticated from that address gets no such pass, nor does a public one."""
    client_id, secret = await _service_client(h)
    stranger_id, stranger_secret = await _service_client(h)  # never used from BACKEND
    other_id, _ = await _service_client(h)
    public, _ = await register_client(h, public=True, scopes=("openid",))
    assert await _credentials(h, BACKEND, client_id, secret) == 200  # the app, known here now
    async with h.new_client(ip=BACKEND) as neighbour:
        answers = []
        for n in range(5):
            r = await neighbour.post(
                "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(other_id, f"guess-{n}")
            )
            answers.append(r.status_code)
        assert answers[0] == 401 and answers[-1] == 429, answers
        r = await neighbour.post("/oauth2/token", data={"grant_type": "client_credentials"})
        assert r.status_code == 429
        r = await neighbour.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": "x",
                "redirect_uri": CALLBACK,
                "client_id": public,
            },
        )
        assert r.status_code == 429  # a public client proves nothing: no pass
    # The known app goes on, at the token endpoint and at revocation and introspection.
    assert await _credentials(h, BACKEND, client_id, secret) == 200
    async with h.new_client(ip=BACKEND) as backend:
        r = await backend.post("/oauth2/revoke", data={"token": "nothing"}, auth=(client_id, secret))
        assert r.status_code == 200, r.text
        r = await backend.post("/oauth2/introspect", data={"token": "nothing"}, auth=(client_id, secret))
        assert r.status_code == 200 and r.json() == {"active": False}, r.text
    # One that never authenticated from there is refused with the address.
    assert await _credentials(h, BACKEND, stranger_id, stranger_secret) == 429
    assert await _credentials(h, ELSEWHERE, stranger_id, stranger_secret) == 200
    # Guessing the known app's own secret from there: its own count (4 a minute) ends it.
    async with h.new_client(ip=BACKEND) as guesser:
        answers = []
        for n in range(5):
            r = await guesser.post(
                "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, f"guess-{n}")
            )
            answers.append(r.status_code)
        assert set(answers) == {429}, answers  # the address's count is spent: never a 401
    assert await _credentials(h, BACKEND, client_id, secret) == 429
    # Elsewhere the app is untouched.
    assert await _credentials(h, ELSEWHERE, client_id, secret) == 200
