"""Alembic migrations: one small revision per schema change."""
