"""Passkeys (WebAuthn): registering them, signing in with one, and one as a sign-in's second step."""
