"""Ending the single sign-on session at an app's request (OpenID Connect RP-Initiated Logout
1.0): the rules of the end-session endpoint."""
