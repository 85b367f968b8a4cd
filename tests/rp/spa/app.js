// The single-page app of tests/rp/test_rp_spa.py and docs/oidc.md: sign-in with PKCE, silent
// renewal with the refresh token and sign-out through SproutGate, with oidc-client-ts (its
// browser bundle defines the global `oidc`). config.js sets window.SPA_CONFIG.
"use strict";
const config = window.SPA_CONFIG;

// --8<-- [start:user-manager]
const userManager = new oidc.UserManager({
  authority: config.authority, // SproutGate's SPROUTGATE_PUBLIC_URL (discovery is read from it)
  client_id: config.client_id, // a public client: `sproutgate clients create --public ...`
  redirect_uri: window.location.origin + "/",
  post_logout_redirect_uri: window.location.origin + "/",
  response_type: "code", // authorization code with PKCE (S256), always
  scope: "openid profile email offline_access",
  automaticSilentRenew: true, // renews with the refresh token before the access token expires
  revokeTokensOnSignout: true, // sign-out also revokes the refresh token (RFC 7009)
});

async function start() {
  const params = new URLSearchParams(window.location.search);
  if (params.has("code") || params.has("error")) {
    // Back from SproutGate: checks state, swaps the code (with the PKCE verifier) for tokens and
    // validates the ID token (issuer, audience, nonce, signature against the JWKS).
    await userManager.signinRedirectCallback();
    window.history.replaceState({}, "", "/");
  } else if (params.has("state")) {
    await userManager.signoutRedirectCallback(); // back from SproutGate's end-session
    window.history.replaceState({}, "", "/");
  }
  show(await userManager.getUser());
}

const signIn = () => userManager.signinRedirect();
const renew = async () => show(await userManager.signinSilent()); // refresh_token grant, no page
const signOut = () => userManager.signoutRedirect(); // end-session with id_token_hint
// --8<-- [end:user-manager]

function show(user) {
  const signedIn = Boolean(user && !user.expired);
  document.getElementById("status").textContent = signedIn
    ? `Signed in as ${user.profile.preferred_username}`
    : "Signed out";
  document.getElementById("claims").textContent = signedIn ? JSON.stringify(user.profile, null, 2) : "";
  document.body.dataset.state = signedIn ? "signed-in" : "signed-out";
}

function fail(error) {
  document.getElementById("error").textContent = String(error && error.message ? error.message : error);
  document.body.dataset.state = "error";
}

document.getElementById("sign-in").addEventListener("click", () => signIn().catch(fail));
document.getElementById("renew").addEventListener("click", () => renew().catch(fail));
document.getElementById("sign-out").addEventListener("click", () => signOut().catch(fail));
window.spa = { userManager, signIn, renew, signOut };
start().catch(fail);
