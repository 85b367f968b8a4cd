"""The OAuth 2.0 / OpenID Connect client registry (issue 12): the apps that may sign people in
through SproutGate."""
