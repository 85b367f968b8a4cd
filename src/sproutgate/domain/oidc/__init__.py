"""The OpenID Connect provider (issue 12): authorization requests and codes, consent, the
tokens an app gets (ID tokens, RFC 9068 access tokens, rotating refresh tokens) and what they
let it read."""
