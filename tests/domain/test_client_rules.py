"""The OAuth client registry's rules (domain/clients/rules.py), without HTTP or storage: redirect
URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7), grants and scopes, secrets."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

import pytest

from sproutgate.domain.clients.rules import (
    Client,
    ClientChanges,
    ClientSpec,
    changed_spec,
    checked_spec,
    client_secret_hash,
    is_client_id_shaped,
    new_client_id,
    new_client_secret,
    redirect_uri_matches,
    secret_matches,
    uri_problem,
)
from sproutgate.domain.errors import InvalidInput


def refused(spec: ClientSpec) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        checked_spec(spec)
    return caught.value.fields


# -- matching ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "presented",
    [
        "https://app.example.com/cb/",  # trailing slash
        "https://app.example.com/cb?x=1",  # extra query
        "https://app.example.com/cb#frag",
        "https://APP.example.com/cb",  # no case folding: simple string comparison
        "https://app.example.com:443/cb",  # no normalisation of the default port
        "https://app.example.com/cb/../cb",
        "https://app.example.com/c",  # a prefix
        "https://app.example.com/cbx",  # a longer string sharing the prefix
        "https://app.example.com.evil.example/cb",
        "https://app.example.com@evil.example/cb",
        "http://app.example.com/cb",
        "",
    ],
)
def test_https_redirect_uris_match_only_exactly(presented: str) -> None:
    assert not redirect_uri_matches(["https://app.example.com/cb"], presented)


def test_exact_redirect_uri_matches() -> None:
    registered = ["https://app.example.com/cb", "com.example.app:/oauth"]
    assert redirect_uri_matches(registered, "https://app.example.com/cb")
    assert redirect_uri_matches(registered, "com.example.app:/oauth")
    assert not redirect_uri_matches(registered, "com.example.app:/oauth2")


def test_loopback_ip_redirect_uris_match_any_port() -> None:
    # RFC 8252 §7.3: the port is the one the OS gave the native app's listener.
    assert redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1:51234/cb")
    assert redirect_uri_matches(["http://127.0.0.1:8000/cb"], "http://127.0.0.1:9/cb")
    assert redirect_uri_matches(["http://127.0.0.1:8000/cb"], "http://127.0.0.1/cb")
    assert redirect_uri_matches(["http://[::1]/cb?app=1"], "http://[::1]:40000/cb?app=1")


@pytest.mark.parametrize("port", ["99999", "65536", "0", "00000"])
def test_a_loopback_port_outside_1_to_65535_is_refused_at_registration_and_match(port: str) -> None:
    """The any-port allowance took five digits as a port: ``:99999`` matched a registered
    loopback URI, a URI no app listens on (and a registration could not hold it)."""
    for host in ("127.0.0.1", "[::1]"):
        assert not redirect_uri_matches([f"http://{host}/cb"], f"http://{host}:{port}/cb")
        assert not redirect_uri_matches([f"http://{host}:8000/cb"], f"http://{host}:{port}/cb")
        assert uri_problem(f"http://{host}:{port}/cb", custom_scheme=False) == "invalid_redirect_uri"
    assert uri_problem(f"https://app.example.com:{port}/cb", custom_scheme=False) == "invalid_redirect_uri"
    # The edges of the range still match and register.
    assert redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1:65535/cb")
    assert redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1:1/cb")
    assert uri_problem("http://127.0.0.1:65535/cb", custom_scheme=False) is None


@pytest.mark.parametrize(
    "presented",
    [
        "http://127.0.0.1:51234/other",  # only the port may vary
        "http://127.0.0.1:51234/cb?x=1",
        "http://127.0.0.2:51234/cb",  # another loopback host is another URI
        "http://[::1]:51234/cb",
        "https://127.0.0.1:51234/cb",
        "http://127.0.0.1:51234@evil.example/cb",
        "http://evil.example@127.0.0.1:51234/cb",
        "http://127.0.0.1:51234/cb#x",
        "http://127.0.0.1:abc/cb",
        "http://127.0.0.1:5 1/cb",
        "http://localhost:51234/cb",
    ],
)
def test_loopback_port_allowance_changes_nothing_else(presented: str) -> None:
    assert not redirect_uri_matches(["http://127.0.0.1/cb"], presented)


def test_localhost_gets_no_port_allowance() -> None:
    # RFC 8252 §8.3: "localhost" may resolve elsewhere; only IP literals get any port.
    assert redirect_uri_matches(["http://localhost:8000/cb"], "http://localhost:8000/cb")
    assert not redirect_uri_matches(["http://localhost:8000/cb"], "http://localhost:8001/cb")


# -- registration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "public", "code"),
    [
        ("https://app.example.com/cb#x", False, "redirect_uri_fragment"),
        ("https://app.example.com/cb#", True, "redirect_uri_fragment"),
        ("http://app.example.com/cb", False, "insecure_redirect_uri"),
        ("http://10.0.0.1/cb", True, "insecure_redirect_uri"),
        ("/cb", False, "invalid_redirect_uri"),
        ("//app.example.com/cb", False, "invalid_redirect_uri"),
        ("https:app.example.com/cb", False, "invalid_redirect_uri"),
        ("https://user:pw@app.example.com/cb", False, "invalid_redirect_uri"),
        ("https://app.example.com/c b", False, "invalid_redirect_uri"),
        ("https://app.example.com/\u00e9", False, "invalid_redirect_uri"),
        ("https://app.example.com:99999/cb", False, "invalid_redirect_uri"),
        ("HTTPS://app.example.com/cb", False, "invalid_redirect_uri"),
        ("https://app.example.com/" + "a" * 2000, False, "invalid_redirect_uri"),
        ("com.example.app:/cb", False, "custom_scheme_needs_public_client"),
        ("myapp://cb", True, "invalid_custom_scheme"),
        ("javascript:alert(1)", True, "invalid_custom_scheme"),
        ("data:text/html,x", True, "invalid_custom_scheme"),
    ],
)
def test_bad_redirect_uris_are_refused_with_their_reason(uri: str, public: bool, code: str) -> None:
    assert uri_problem(uri, custom_scheme=public) == code
    assert refused(ClientSpec(name="App", redirect_uris=(uri,), public=public)) == {"redirect_uris": code}


@pytest.mark.parametrize(
    ("uri", "public"),
    [
        ("https://app.example.com/cb", False),
        ("https://app.example.com:8443/cb?tenant=1", False),
        ("http://127.0.0.1/cb", False),
        ("http://[::1]:8080/cb", True),
        ("http://localhost:3000/cb", True),
        ("com.example.app:/oauth2redirect", True),
    ],
)
def test_good_redirect_uris_register(uri: str, public: bool) -> None:
    checked = checked_spec(ClientSpec(name="App", redirect_uris=(uri, uri), public=public))
    assert checked.redirect_uris == (uri,)


def test_defaults_and_canonical_order() -> None:
    checked = checked_spec(ClientSpec(name="  App  ", redirect_uris=("https://a.example/cb",)))
    assert checked.name == "App"
    assert checked.scopes == ("openid", "profile", "email")
    assert checked.grant_types == ("authorization_code", "refresh_token")
    assert not checked.public and not checked.first_party
    ordered = checked_spec(
        ClientSpec(
            name="App",
            redirect_uris=("https://a.example/cb",),
            scopes=("sproutgate", "openid", "openid"),
            grant_types=("refresh_token", "authorization_code"),
        )
    )
    assert ordered.scopes == ("openid", "sproutgate")
    assert ordered.grant_types == ("authorization_code", "refresh_token")


def test_client_credentials_only_for_confidential_clients() -> None:
    # RFC 6749 §4.4: the grant is the client authenticating itself; a public client cannot.
    assert refused(ClientSpec(name="SPA", public=True, grant_types=("client_credentials",))) == {
        "grant_types": "client_credentials_needs_confidential_client"
    }
    service = checked_spec(ClientSpec(name="Backend", grant_types=("client_credentials",)))
    assert service.grant_types == ("client_credentials",) and service.redirect_uris == ()


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        (ClientSpec(name="", redirect_uris=("https://a.example/cb",)), {"name": "field_required"}),
        (ClientSpec(name=" \t ", redirect_uris=("https://a.example/cb",)), {"name": "field_required"}),
        (
            ClientSpec(name="x" * 101, redirect_uris=("https://a.example/cb",)),
            {"name": "client_name_too_long"},
        ),
        (ClientSpec(name="a\nb", redirect_uris=("https://a.example/cb",)), {"name": "invalid_value"}),
        (ClientSpec(name="App"), {"redirect_uris": "field_required"}),
        (
            ClientSpec(name="App", redirect_uris=tuple(f"https://a.example/{i}" for i in range(21))),
            {"redirect_uris": "too_many_uris"},
        ),
        (
            ClientSpec(name="App", redirect_uris=("https://a.example/cb",), scopes=("openid", "admin")),
            {"scopes": "unknown_scope"},
        ),
        (
            ClientSpec(name="App", redirect_uris=("https://a.example/cb",), grant_types=("password",)),
            {"grant_types": "unknown_grant_type"},
        ),
        (
            ClientSpec(name="App", redirect_uris=("https://a.example/cb",), grant_types=("implicit",)),
            {"grant_types": "unknown_grant_type"},
        ),
        (
            ClientSpec(name="App", grant_types=("refresh_token",)),
            {"grant_types": "refresh_token_needs_authorization_code"},
        ),
        (
            ClientSpec(
                name="App",
                redirect_uris=("https://a.example/cb",),
                post_logout_redirect_uris=("http://a.example/",),
            ),
            {"post_logout_redirect_uris": "insecure_redirect_uri"},
        ),
        (
            ClientSpec(
                name="App",
                redirect_uris=("https://a.example/cb",),
                backchannel_logout_uri="https://a.example/bc#x",
            ),
            {"backchannel_logout_uri": "redirect_uri_fragment"},
        ),
        (
            ClientSpec(
                name="App",
                public=True,
                redirect_uris=("https://a.example/cb",),
                backchannel_logout_uri="com.example.app:/logout",
            ),
            {"backchannel_logout_uri": "custom_scheme_needs_public_client"},
        ),
        (
            ClientSpec(name="App", redirect_uris="https://a.example/cb"),  # type: ignore[arg-type]
            {"redirect_uris": "invalid_type"},
        ),
    ],
)
def test_bad_registrations_name_the_field(spec: ClientSpec, fields: dict[str, str]) -> None:
    assert refused(spec) == fields


# -- changes ----------------------------------------------------------------------------------
def _client(**overrides: object) -> Client:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    values: dict[str, object] = {
        "client_id": "abc",
        "name": "App",
        "public": False,
        "first_party": False,
        "redirect_uris": ("https://a.example/cb",),
        "post_logout_redirect_uris": (),
        "backchannel_logout_uri": None,
        "scopes": ("openid",),
        "grant_types": ("authorization_code",),
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return Client(**values)  # type: ignore[arg-type]


def test_changes_list_only_what_differs_and_are_checked_like_a_registration() -> None:
    client = _client()
    checked, changed = changed_spec(client, ClientChanges(name="App", scopes=("openid", "email")))
    assert changed == ["scopes"] and checked.scopes == ("openid", "email")
    with pytest.raises(InvalidInput) as caught:
        changed_spec(client, ClientChanges(redirect_uris=("http://a.example/cb",)))
    assert caught.value.fields == {"redirect_uris": "insecure_redirect_uri"}
    with pytest.raises(InvalidInput) as caught:
        changed_spec(client, ClientChanges(redirect_uris=()))
    assert caught.value.fields == {"redirect_uris": "field_required"}


def test_client_type_is_fixed_at_registration() -> None:
    with pytest.raises(InvalidInput) as caught:
        changed_spec(_client(), ClientChanges(public=True))
    assert caught.value.fields == {"public": "client_type_fixed"}
    _, changed = changed_spec(_client(), ClientChanges(public=False))
    assert changed == []
    # A public client cannot be given client_credentials later either.
    with pytest.raises(InvalidInput) as caught:
        changed_spec(
            _client(public=True), ClientChanges(grant_types=("authorization_code", "client_credentials"))
        )
    assert caught.value.fields == {"grant_types": "client_credentials_needs_confidential_client"}


def test_client_helpers_for_the_protocol() -> None:
    client = _client(
        scopes=("openid", "email", "offline_access"), post_logout_redirect_uris=("https://a.example/bye",)
    )
    assert client.allowed_scopes(["email", "sproutgate", "openid"]) == ("openid", "email")
    assert client.allows_post_logout_redirect_uri("https://a.example/bye")
    assert not client.allows_post_logout_redirect_uri("https://a.example/bye2")
    assert client.allows_grant("authorization_code") and not client.allows_grant("client_credentials")


# -- identifiers and secrets ------------------------------------------------------------------
def test_secrets_are_random_and_hashes_bound_to_key_and_client() -> None:
    key = secrets.token_bytes(32)
    secret = new_client_secret()
    assert len(secret) == 43 and secret != new_client_secret()
    stored = client_secret_hash(key, "client-a", secret)
    assert len(stored) == 64 and secret not in stored
    assert secret_matches(key, "client-a", secret, stored)
    assert not secret_matches(key, "client-b", secret, stored)  # a hash copied to another client
    assert not secret_matches(secrets.token_bytes(32), "client-a", secret, stored)  # another key
    assert not secret_matches(key, "client-a", secret[:-1], stored)


def test_client_ids_are_random_and_shaped() -> None:
    a, b = new_client_id(), new_client_id()
    assert a != b and is_client_id_shaped(a) and len(a) == 24
    for odd in ("", "a" * 65, "a b", "a/b", "a\x00", None, 5):
        assert not is_client_id_shaped(odd)


def test_new_client_ids_are_lower_case_letters_and_digits() -> None:
    # A leading "-" made `sproutgate clients rotate-secret <id>` read the id as an option
    # (one client in 64); "_" and case made ids awkward to search for in logs.
    ids = {new_client_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(re.fullmatch(r"[a-z0-9]{24}", i) and is_client_id_shaped(i) for i in ids)
