"""Every table module, imported in one place so that SQLModel.metadata knows every table."""

from __future__ import annotations

from sqlmodel import SQLModel

from models import checkin_tables, consent, inbox, tables  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
