"""Who may receive a message from the bot: the one rule every send path obeys."""

from __future__ import annotations

from typing import Protocol


class ContactState(Protocol):
    """Read only: a participant row, or the plain values the dispatch pass loads."""

    @property
    def status(self) -> str: ...
    @property
    def chat_contact(self) -> bool: ...
    @property
    def unreachable(self) -> bool: ...
    @property
    def telegram_chat_id(self) -> int | None: ...


def may_message(participant: ContactState) -> bool:
    """Only an active, linked, reachable participant who has not left chat contact.

    Withdrawn, deceased (confirmed) and death-reported participants get nothing; a proxy's
    death report stops prompts until a coordinator confirms or corrects it.
    """
    return (
        participant.status == "active"
        and participant.chat_contact
        and not participant.unreachable
        and participant.telegram_chat_id is not None
    )
