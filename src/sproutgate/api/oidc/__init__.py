"""The OpenID Connect provider's machine endpoints: discovery, token, userinfo, revocation and
introspection (the authorization endpoint and consent page are pages: web/oidc_pages.py)."""
