"""The check-in tables: where each check-in stands, and every answer as soon as it is given."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


def _utc(nullable: bool = True) -> Column[dt.datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class CheckInStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # submitted from the summary; the visit is completed by chat
    DEATH_REPORTED = "death_reported"  # a proxy reported the participant's death; ended there


class CheckIn(SQLModel, table=True):
    """One visit's questionnaire in chat, pinned to the version it was started under.

    `current_item` is the question on screen (None: the summary). `step` counts the questions
    shown; a button carries the step it was shown at, so older buttons are recognised as stale.
    """

    __tablename__ = "checkin"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id", unique=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    instrument: str = Field(max_length=32)
    version: int
    status: str = Field(default=CheckInStatus.IN_PROGRESS, max_length=16, index=True)
    current_item: str | None = Field(default=None, max_length=32)
    step: int = 0
    draft: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_update_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    started_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    updated_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    completed_at: dt.datetime | None = Field(default=None, sa_column=_utc())


class CheckInAnswer(SQLModel, table=True):
    """One answer to one item. A changed answer adds a row and retires the old one (`current`)."""

    __tablename__ = "checkin_answer"
    __table_args__ = (Index("ix_checkin_answer_item", "checkin_id", "item", "current"),)

    id: int | None = Field(default=None, primary_key=True)
    checkin_id: int = Field(foreign_key="checkin.id")
    item: str = Field(max_length=32)
    value: str = Field(sa_column=Column(Text, nullable=False))
    raw: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    respondent: str | None = Field(default=None, max_length=8)  # self or proxy
    instrument_version: str = Field(max_length=40)
    answered_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    current: bool = True
