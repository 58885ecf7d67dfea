"""A loopback, Telegram-compatible Bot API server with a user-side API and fault injection."""

from sandbox.server import Fault, Sandbox, SandboxUser

__all__ = ["Fault", "Sandbox", "SandboxUser"]
