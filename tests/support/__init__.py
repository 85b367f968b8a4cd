"""Test-support helpers for the SproutGate suite (real backing servers, no mocks)."""

from .servers import (
    PostgresServer,
    ReceivedMessage,
    RedisServer,
    ServerProcess,
    ServerStartError,
    SmtpServer,
    free_port,
)

__all__ = [
    "PostgresServer",
    "ReceivedMessage",
    "RedisServer",
    "ServerProcess",
    "ServerStartError",
    "SmtpServer",
    "free_port",
]
