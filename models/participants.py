"""Query functions for participants, invites and link attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, col, delete, select

from models import audit, visits
from models.tables import Invite, LinkAttempt, Participant
from study.invites import InviteState, hash_token, invite_state, new_token, user_key


class DuplicateStudyId(Exception):
    """The study id is already enrolled."""


class UnknownParticipant(Exception):
    """No participant has that study id."""


@dataclass(frozen=True)
class IssuedInvite:
    study_id: str
    token: str
    expires_at: dt.datetime


def participant_by_study_id(session: Session, study_id: str) -> Participant | None:
    return session.exec(select(Participant).where(Participant.study_id == study_id)).first()


# Built once: every update's screens read the participant this way (bot/replies.py), so the
# statement and its cache key are not built again for each one (models/locks.py alike).
_BY_USER = select(Participant).where(Participant.telegram_user_id == bindparam("telegram_user_id"))


def participant_by_user(session: Session, telegram_user_id: int) -> Participant | None:
    return session.exec(_BY_USER, params={"telegram_user_id": telegram_user_id}).first()


def list_participants(session: Session) -> Sequence[Participant]:
    return session.exec(select(Participant).order_by(col(Participant.study_id))).all()


def enroll(
    session: Session,
    *,
    study_id: str,
    enrolled_on: dt.date,
    language: str,
    timezone: str,
    biospecimen: bool,
    now: dt.datetime,
    invite_ttl: dt.timedelta,
    actor: str,
) -> IssuedInvite:
    """Record a participant and issue their first invite."""
    if participant_by_study_id(session, study_id) is not None:
        raise DuplicateStudyId(study_id)
    participant = Participant(
        study_id=study_id,
        language=language,
        timezone=timezone,
        enrolled_on=enrolled_on,
        biospecimen=biospecimen,
        created_at=now,
    )
    session.add(participant)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="participant.enrolled",
        entity="participant",
        entity_id=study_id,
        after={
            "language": language,
            "timezone": timezone,
            "enrolled_on": enrolled_on.isoformat(),
            "biospecimen": biospecimen,
            "status": participant.status,
        },
    )
    return issue_invite(session, study_id=study_id, now=now, invite_ttl=invite_ttl, actor=actor)


def issue_invite(
    session: Session, *, study_id: str, now: dt.datetime, invite_ttl: dt.timedelta, actor: str
) -> IssuedInvite:
    """Issue a fresh invite and revoke any earlier unused one."""
    participant = participant_by_study_id(session, study_id)
    if participant is None or participant.id is None:
        raise UnknownParticipant(study_id)
    open_invites = session.exec(
        select(Invite).where(
            Invite.participant_id == participant.id,
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
        )
    ).all()
    for old in open_invites:
        old.revoked_at = now
        session.add(old)
    token = new_token()
    invite = Invite(
        participant_id=participant.id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + invite_ttl,
    )
    session.add(invite)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="invite.issued",
        entity="participant",
        entity_id=study_id,
        after={"invite_id": invite.id, "revoked": [o.id for o in open_invites]},
    )
    return IssuedInvite(study_id=study_id, token=token, expires_at=invite.expires_at)


def redeem_invite(
    session: Session, *, token: str, telegram_user_id: int, chat_id: int, now: dt.datetime
) -> Participant | None:
    """Link the Telegram user to the invite's participant; None for any kind of failure.

    Redeeming again by the user it already linked succeeds, so a replayed update is harmless.
    """
    invite = session.exec(select(Invite).where(Invite.token_hash == hash_token(token))).first()
    if invite is None:
        return None
    participant = session.get(Participant, invite.participant_id)
    if participant is None:
        return None
    state = invite_state(
        expires_at=invite.expires_at, used_at=invite.used_at, revoked_at=invite.revoked_at, now=now
    )
    if state is InviteState.USED and participant.telegram_user_id == telegram_user_id:
        return participant
    if state is not InviteState.VALID:
        return None
    other = participant_by_user(session, telegram_user_id)
    if other is not None and other.id != participant.id:
        return None  # one Telegram account speaks for one participant only
    before = {"linked": participant.telegram_user_id is not None}
    invite.used_at = now
    participant.telegram_user_id = telegram_user_id
    participant.telegram_chat_id = chat_id
    participant.linked_at = now
    session.add_all([invite, participant])
    session.flush()
    assert participant.id is not None
    visits.wake(session, participant_id=participant.id, now=now)  # a due prompt goes out now
    audit.record(
        session,
        at=now,
        actor=f"participant:{participant.study_id}",
        action="participant.linked",
        entity="participant",
        entity_id=participant.study_id,
        before=before,
        after={"linked": True, "invite_id": invite.id},
    )
    return participant


def record_link_failure(
    session: Session, *, telegram_user_id: int, now: dt.datetime, keep: dt.timedelta
) -> None:
    """Count a failed link attempt and forget attempts older than the throttle window."""
    session.exec(delete(LinkAttempt).where(col(LinkAttempt.at) < now - keep))
    session.add(LinkAttempt(user_key=user_key(telegram_user_id), at=now))


def link_failures(
    session: Session, *, telegram_user_id: int, since: dt.datetime
) -> list[dt.datetime]:
    query = select(LinkAttempt.at).where(
        LinkAttempt.user_key == user_key(telegram_user_id), col(LinkAttempt.at) > since
    )
    return list(session.exec(query).all())


def set_language(
    session: Session, *, participant: Participant, language: str, now: dt.datetime
) -> None:
    before = participant.language
    participant.language = language
    session.add(participant)
    audit.record(
        session,
        at=now,
        actor=f"participant:{participant.study_id}",
        action="participant.language",
        entity="participant",
        entity_id=participant.study_id,
        before={"language": before},
        after={"language": language},
    )
