"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): logout tokens queued when a
session ends and delivered to the clients it was used with."""
