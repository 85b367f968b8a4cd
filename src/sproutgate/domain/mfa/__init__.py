"""Second factors: authenticator apps (TOTP), recovery codes, and the second step of a sign-in."""
