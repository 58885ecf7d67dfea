"""Consent scopes as pure rules: what a sequence of consent events means for a participant.

A participant enrols consenting to the study and to chat contact, and to the optional sample
and organoid part if they joined it. Each later event withdraws or restores one scope; the
participant's flags are derived from the whole sequence, never edited on their own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from study.contact import ContactState, may_message


class Scope(StrEnum):
    CONTACT = "contact"  # stop chat contact only; phone and clinic follow-up continue
    BIOSPECIMEN = "biospecimen"  # leave the optional sample and organoid part
    STUDY = "study"  # leave the whole study: no contact of any kind


class Change(StrEnum):
    WITHDRAW = "withdraw"
    RESTORE = "restore"  # re-consent, recorded by a coordinator only


class Actor(StrEnum):
    PARTICIPANT = "participant"
    COORDINATOR = "coordinator"
    SYSTEM = "system"


class Channel(StrEnum):
    CHAT = "chat"
    PHONE = "phone"
    IN_PERSON = "in_person"
    CLI = "cli"


class Samples(StrEnum):
    DESTROY = "destroy"  # samples already collected are destroyed
    KEEP = "keep"  # samples already collected may be kept and used


class ConsentError(ValueError):
    """The change does not apply to the participant's current consent."""


class EventLike(Protocol):
    @property
    def scope(self) -> str: ...
    @property
    def change(self) -> str: ...
    @property
    def samples(self) -> str | None: ...


@dataclass(frozen=True)
class ConsentState:
    """What the participant currently agrees to."""

    in_study: bool = True
    chat_contact: bool = True
    biospecimen: bool = False
    samples: Samples | None = None  # their choice when they left the sample part

    @property
    def chat_allowed(self) -> bool:
        """Chat needs both: consent to the study and to chat contact."""
        return self.in_study and self.chat_contact

    def has(self, scope: Scope) -> bool:
        if scope is Scope.CONTACT:
            return self.chat_allowed
        if scope is Scope.BIOSPECIMEN:
            return self.biospecimen
        return self.in_study


def apply(
    state: ConsentState, scope: Scope, change: Change, samples: Samples | None
) -> ConsentState:
    """The state after one event; raise ConsentError if it changes nothing or is incomplete."""
    withdraw = change is Change.WITHDRAW
    if withdraw != state.has(scope) or (scope is Scope.CONTACT and not state.in_study):
        raise ConsentError(f"cannot {change.value} {scope.value}: not in that state")
    if scope is Scope.BIOSPECIMEN:
        if withdraw and samples is None:
            raise ConsentError("leaving the sample part needs a choice: destroy or keep")
        return replace(state, biospecimen=not withdraw, samples=samples if withdraw else None)
    if samples is not None:
        raise ConsentError("a samples choice belongs to the biospecimen scope only")
    if scope is Scope.CONTACT:
        return replace(state, chat_contact=not withdraw)
    return replace(state, in_study=not withdraw)


def derive(events: Sequence[EventLike], *, biospecimen_now: bool) -> ConsentState:
    """Replay the participant's consent events from enrolment onwards.

    Whether they joined the sample part at enrolment follows from their first event about it,
    or, if there is none, from the participant's flag, which nothing else has changed.
    """
    first = next((e for e in events if e.scope == Scope.BIOSPECIMEN), None)
    joined = first.change == Change.WITHDRAW if first is not None else biospecimen_now
    state = ConsentState(biospecimen=joined)
    for event in events:
        samples = Samples(event.samples) if event.samples else None
        state = apply(state, Scope(event.scope), Change(event.change), samples)
    return state


def offered_scopes(state: ConsentState) -> list[Scope]:
    """The withdrawal choices to show: only scopes the participant still has."""
    order = (Scope.CONTACT, Scope.BIOSPECIMEN, Scope.STUDY)
    return [scope for scope in order if state.has(scope)]


# Purposes of the few messages that may still go to someone who has left chat contact: the
# confirmation of their withdrawal, the one fixed reply to their own messages, and the emergency
# text. Each is created only by the withdrawal code, in answer to the participant themselves.
AFTER_WITHDRAWAL_PURPOSES: tuple[str, ...] = (
    "withdrawal-confirmation:",
    "withdrawn-reply:",
    "withdrawn-emergency:",
)


def has_left_chat(participant: ContactState) -> bool:
    """Withdrew from chat contact or from the whole study (until a coordinator re-consents)."""
    return participant.status == "withdrawn" or (
        participant.status == "active" and not participant.chat_contact
    )


# The condolence that answers a proxy's death report (`checkin:<check-in id>:condolence`), as a
# pattern and as SQL LIKE (models/deaths cancels an unsent one when a coordinator decides).
_CONDOLENCE = re.compile(r"^checkin:[0-9]+:condolence$")
CONDOLENCE_LIKE = "checkin:%:condolence"


def may_send(participant: ContactState, purpose: str) -> bool:
    """The send rule for one outbox row: may_message, plus two explicit exceptions.

    - The post-withdrawal replies, which never reach a participant whose death was reported or
      confirmed.
    - The condolence, the reply to a death report: only while that report awaits a coordinator,
      so it is held and retried like any message while Telegram fails, and never sent once the
      death is confirmed or the report corrected.
    """
    if _CONDOLENCE.match(purpose):
        return (
            participant.status == "death_reported"
            and participant.chat_contact
            and not participant.unreachable
            and participant.telegram_chat_id is not None
        )
    if may_message(participant):
        return True
    return (
        purpose.startswith(AFTER_WITHDRAWAL_PURPOSES)
        and participant.status in ("active", "withdrawn")
        and participant.telegram_chat_id is not None
    )


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return "".join(ch for ch in folded if ch.isalnum() or ch.isspace()).strip()


def is_stop_request(text: str, stop_words: Sequence[str]) -> bool:
    """A short message that is one of the stop words, ignoring case, spaces and punctuation.

    Only a whole-message match counts, so a longer answer that merely contains "stop" is not
    taken for a wish to leave; a match shows the withdrawal menu and never withdraws by itself.
    """
    said = " ".join(_normalise(text).split())
    return bool(said) and said in {" ".join(_normalise(w).split()) for w in stop_words}
