"""Telegram: the Application, handlers, keyboards and the outbox sender; nothing else calls it."""
