"""The OpenID Connect provider's rules as pure functions: PKCE (RFC 7636), authorization
requests (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1), claims per scope, freshness, consent
and refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from sproutgate.domain.oidc import rules
from sproutgate.domain.oidc.errors import AuthorizationError

CALLBACK = "https://app.example/cb"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@dataclass(frozen=True)
class FakeClient:
    client_id: str = "app"
    public: bool = False
    first_party: bool = False
    scopes: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")


def params(**extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": "app", "redirect_uri": CALLBACK, "scope": "openid", **extra}


def refused(p: dict[str, str], client: FakeClient | None = None) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as caught:
        rules.check_authorization_params(p, client or FakeClient(), CALLBACK)
    assert caught.value.redirect_uri == CALLBACK
    return caught.value


def test_s256_matches_the_rfc_7636_example_and_nothing_else():
    assert rules.s256(VERIFIER) == CHALLENGE
    assert rules.pkce_matches(VERIFIER, CHALLENGE)
    assert not rules.pkce_matches(VERIFIER[:-1] + "A", CHALLENGE)
    assert not rules.pkce_matches(CHALLENGE, CHALLENGE)  # the challenge itself ("plain") is no verifier
    assert not rules.pkce_matches(None, CHALLENGE)
    assert not rules.pkce_matches("short", rules.s256("short"))  # under 43 characters
    assert not rules.pkce_matches("a" * 129, rules.s256("a" * 129))
    assert not rules.pkce_matches("é" * 43, CHALLENGE)


def test_a_good_request_is_read_whole():
    req = rules.check_authorization_params(
        params(
            scope="openid email openid",
            state="xyz",
            nonce="n1",
            code_challenge=CHALLENGE,
            code_challenge_method="S256",
            prompt="login consent",
            max_age="300",
            login_hint="ann@example.com",
            ui_locales="en-GB zh",
        ),
        FakeClient(),
        CALLBACK,
    )
    assert req.scopes == ("openid", "email") and req.state == "xyz" and req.nonce == "n1"
    assert req.code_challenge == CHALLENGE and req.prompt == {"login", "consent"} and req.max_age == 300
    assert req.login_hint == "ann@example.com" and req.ui_locales == ("en-GB", "zh")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid sproutgate"}, "invalid_scope"),  # not registered for this client
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": CHALLENGE}, "invalid_request"),  # no method: plain by default, refused
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"request_uri": "https://x"}, "request_uri_not_supported"),
        ({"nonce": "n" * 513}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_bad_requests_go_back_to_the_client_with_the_rfc_error(extra, code):
    error = refused(params(state="s1", **extra))
    assert error.code == code and error.state == "s1"


def test_public_clients_must_use_pkce_confidential_ones_may():
    public = FakeClient(public=True)
    assert refused(params(), public).code == "invalid_request"
    assert (
        rules.check_authorization_params(
            params(code_challenge=CHALLENGE, code_challenge_method="S256"), public, CALLBACK
        ).code_challenge
        == CHALLENGE
    )
    assert rules.check_authorization_params(params(), FakeClient(), CALLBACK).code_challenge is None


def test_a_client_without_the_code_grant_is_unauthorized():
    assert refused(params(), FakeClient(grant_types=("client_credentials",))).code == "unauthorized_client"


def test_claims_follow_the_scopes_and_nothing_more():
    user = dict(
        user_id="u1",
        username="Ann",
        account="ann",
        avatar_url=None,
        updated_at=datetime(2026, 1, 2, tzinfo=UTC),
        email="ann@example.com",
        email_verified=True,
        level=3,
        sprout_coins=7,
    )
    assert rules.claims_for(["openid"], **user) == {"sub": "u1"}
    assert rules.claims_for(["openid", "email"], **user) == {
        "sub": "u1",
        "email": "ann@example.com",
        "email_verified": True,
    }
    profile = rules.claims_for(["openid", "profile"], **user)
    assert profile == {"sub": "u1", "name": "Ann", "preferred_username": "ann", "updated_at": 1767312000}
    assert rules.claims_for(["openid", "sproutgate"], **{**user, "avatar_url": "https://a/p.png"}) == {
        "sub": "u1",
        "level": 3,
        "sprout_coins": 7,
    }
    assert rules.claims_for(["openid", "profile"], **{**user, "avatar_url": "https://a/p.png"})["picture"]


def test_prompt_login_and_max_age_ask_for_a_fresh_sign_in():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    base = rules.check_authorization_params(params(), FakeClient(), CALLBACK)
    assert rules.sign_in_is_fresh(now - timedelta(days=3), now, base)
    login = rules.check_authorization_params(params(prompt="login"), FakeClient(), CALLBACK)
    assert not rules.sign_in_is_fresh(now, now, login)
    aged = rules.check_authorization_params(params(max_age="60"), FakeClient(), CALLBACK)
    assert rules.sign_in_is_fresh(now - timedelta(seconds=60), now, aged)
    assert not rules.sign_in_is_fresh(now - timedelta(seconds=61), now, aged)
    assert rules.without_prompt({"prompt": "login consent", "a": "b"}, "login") == {
        "prompt": "consent",
        "a": "b",
    }
    assert rules.without_prompt({"prompt": "login"}, "login") == {}
    assert rules.after_sign_in({"prompt": "login consent", "max_age": "0", "a": "b"}) == {
        "prompt": "consent",
        "a": "b",
    }


def test_a_demanded_fresh_sign_in_binds_every_request_with_the_same_state_nonce_and_challenge():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)

    def request(**extra: str) -> rules.AuthorizationRequest:
        bound = {"state": "s1", "nonce": "n1", "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
        return rules.check_authorization_params(params(**{**bound, **extra}), FakeClient(), CALLBACK)

    assert rules.sign_in_demand(request(), now) is None
    assert rules.sign_in_demand(request(prompt="login"), now) == now
    assert rules.sign_in_demand(request(max_age="60"), now) == now - timedelta(seconds=60)
    assert rules.sign_in_demand(request(prompt="login", max_age="60"), now) == now
    # prompt, max_age, scope, login_hint: not part of the binding; state, nonce, challenge are.
    key = rules.sign_in_demand_key(request(prompt="login"))
    assert key == rules.sign_in_demand_key(request(scope="openid profile", login_hint="x", max_age="9"))
    for other in ({"state": "s2"}, {"nonce": "n2"}, {"code_challenge": "A" * 43}):
        assert rules.sign_in_demand_key(request(**other)) != key
    # Absent and empty values, and values that would run together, stay apart.
    assert rules.sign_in_demand_key(request(state="")) != key
    assert rules.sign_in_demand_key(request(state="s1", nonce="n1")) != rules.sign_in_demand_key(
        request(state="s1n", nonce="1")
    )
    # A demand refuses an older sign-in even for a request that asks for nothing itself.
    plain = request()
    assert rules.sign_in_is_fresh(now - timedelta(seconds=1), now, plain)
    assert not rules.sign_in_is_fresh(now - timedelta(seconds=1), now, plain, signed_in_after=now)
    # Exact: a sign-in a moment before the demand does not answer it (no clock tolerance).
    assert not rules.sign_in_is_fresh(now - timedelta(milliseconds=1), now, plain, signed_in_after=now)
    assert rules.sign_in_is_fresh(now, now, plain, signed_in_after=now)


def test_consent_is_asked_of_third_parties_only_and_remembered_per_scope():
    req = rules.check_authorization_params(params(scope="openid email"), FakeClient(), CALLBACK)
    assert not rules.consent_needed(FakeClient(first_party=True), None, req)
    assert rules.consent_needed(FakeClient(), None, req)
    assert not rules.consent_needed(FakeClient(), ("openid", "email", "profile"), req)
    assert rules.consent_needed(FakeClient(), ("openid",), req)
    again = rules.check_authorization_params(params(scope="openid", prompt="consent"), FakeClient(), CALLBACK)
    assert rules.consent_needed(FakeClient(), ("openid",), again)


def test_refresh_tokens_need_offline_access_or_a_first_party_client():
    assert not rules.refresh_allowed(FakeClient(), ["openid"])
    assert rules.refresh_allowed(FakeClient(), ["openid", "offline_access"])
    assert rules.refresh_allowed(FakeClient(first_party=True), ["openid"])
    assert not rules.refresh_allowed(
        FakeClient(first_party=True, grant_types=("authorization_code",)), ["openid"]
    )
    assert rules.survives_sign_out(["openid", "offline_access"]) and not rules.survives_sign_out(["openid"])


def test_a_new_lasting_grant_from_an_old_sign_in_needs_a_recent_one():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    old, recent = now - timedelta(seconds=601), now - timedelta(seconds=600)
    lasting = ("openid", "profile", "offline_access")

    def needs(requested, held=(), auth_time=old, client=FakeClient()):
        return rules.lasting_grant_needs_recent_sign_in(client, requested, held, auth_time, now, 600)

    assert needs(lasting)
    assert not needs(lasting, auth_time=recent)  # the window's edge still counts as recent
    assert not needs(("openid", "profile"))  # ends with the sign-in: nothing lasting is added
    assert not needs(lasting, held=[lasting])  # the same again (another device of the app)
    assert not needs(("openid", "offline_access"), held=[("openid",), lasting])  # fewer scopes
    assert needs(("openid", "email", "offline_access"), held=[lasting])  # wider: new access
    assert needs(lasting, held=[("openid", "profile")])  # held, but not lasting
    # A public client's tokens go wherever the request was made: every new grant is new access.
    assert needs(lasting, held=[lasting], client=FakeClient(public=True))
    assert not needs(lasting, held=[lasting], auth_time=recent, client=FakeClient(public=True))
    # So does a confidential client's code sent to a loopback port: not its server's hands.
    for uri in ("http://127.0.0.1:5555/cb", "http://[::1]/cb", "http://localhost:8000/cb"):
        assert rules.lasting_grant_needs_recent_sign_in(
            FakeClient(), lasting, [lasting], old, now, 600, redirect_uri=uri
        )
    assert not rules.lasting_grant_needs_recent_sign_in(
        FakeClient(), lasting, [lasting], old, now, 600, redirect_uri="https://app.example/cb"
    )


def test_the_token_endpoint_counts_confidential_clients_per_client_public_ones_per_address():
    assert rules.token_limit(FakeClient(), "198.51.100.1") == ("oidc_token_client", "app")
    assert rules.token_limit(FakeClient(public=True), "198.51.100.1") == ("oidc_token_ip", "198.51.100.1")


def test_a_grant_stands_without_first_party_only_on_a_consent_covering_it():
    assert rules.stands_without_first_party(("openid", "profile"), ("openid", "profile", "email"))
    assert not rules.stands_without_first_party(("openid", "email"), ("openid", "profile"))
    assert not rules.stands_without_first_party(("openid",), None)


def test_id_tokens_carry_nonce_only_when_asked_and_access_tokens_name_their_client():
    at = datetime(2026, 5, 1, tzinfo=UTC)
    common = dict(issuer="https://id.example", client_id="app", user_claims={"sub": "u1"}, auth_time=at)
    assert "nonce" not in rules.id_token_claims(**common, sid="s", amr=["pwd"], nonce=None)
    claims = rules.id_token_claims(**common, sid="s", amr=["pwd", "otp", "mfa"], nonce="n")
    assert claims == {
        "sub": "u1",
        "iss": "https://id.example",
        "aud": "app",
        "azp": "app",
        "auth_time": int(at.timestamp()),
        "sid": "s",
        "amr": ["pwd", "otp", "mfa"],
        "nonce": "n",
    }
    access = rules.access_token_claims(
        issuer="https://id.example",
        client_id="app",
        subject="u1",
        grant_id="g",
        scopes=["email", "openid"],
        jti="j",
    )
    assert access["aud"] == access["client_id"] == "app" and access["scope"] == "openid email"
    assert access["sid"] == "g"
    service = rules.access_token_claims(
        issuer="https://id.example", client_id="svc", subject="svc", grant_id=None, scopes=[], jti="j"
    )
    assert "sid" not in service and service["sub"] == "svc"


def test_ui_locales_pick_a_served_language_by_primary_subtag():
    assert rules.ui_language(("fr", "zh-Hans"), ("zh-CN", "en")) == "zh-CN"
    assert rules.ui_language(("en-GB",), ("zh-CN", "en")) == "en"
    assert rules.ui_language(("fr",), ("zh-CN", "en")) is None


def test_discovery_names_every_endpoint_under_the_issuer():
    meta = rules.provider_metadata("https://id.example")
    assert meta["issuer"] == "https://id.example"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    for key in ("authorization", "token", "userinfo", "revocation", "introspection", "end_session"):
        assert meta[f"{key}_endpoint"].startswith("https://id.example/oauth2/")
