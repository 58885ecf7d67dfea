"""Helpers to play a participant through the check-in in the sandbox."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from sandbox import Sandbox, SandboxUser
from sandbox.state import BotMessage
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant, open_visit


class Chat:
    """One participant's chat: what the bot sent so far, and pressing its buttons by code."""

    def __init__(self, sandbox: Sandbox, user: SandboxUser) -> None:
        self.sandbox, self.user = sandbox, user
        self.seen = 0

    async def expect(self) -> BotMessage:
        """The next message the bot sends to this chat."""
        message = await self.sandbox.next_message(self.user.id, after=self.seen)
        self.seen += 1
        return message

    async def settle(self) -> None:
        await self.sandbox.wait_until(lambda: not self.sandbox.unanswered_callbacks())

    async def press(self, message: BotMessage, code: str) -> BotMessage:
        """Press the button whose data ends in `:code`; return the next message."""
        await self.press_only(message, code)
        return await self.expect()

    async def press_only(self, message: BotMessage, code: str) -> None:
        await self.sandbox.press(self.user, message, data_for(message, code))
        await self.settle()

    async def say(self, text: str) -> BotMessage:
        await self.sandbox.send_text(self.user, text)
        return await self.expect()


def data_for(message: BotMessage, code: str) -> str:
    for _, data in message.buttons:
        if data.endswith(f":{code}"):
            return data
    raise KeyError(f"no button with code {code!r} in {message.buttons}")


def codes(message: BotMessage) -> list[str]:
    return [data.rsplit(":", 1)[1] for _, data in message.buttons]


async def linked_chat(
    sandbox: Sandbox,
    engine: Engine,
    clock: FrozenClock,
    study_id: str = "P001",
    *,
    language: str = "zh",
    with_visit: bool = True,
) -> Chat:
    """A participant linked to a new sandbox user (greeting consumed), with an open visit."""
    invite = enroll_participant(engine, clock, study_id, language=language)
    user = sandbox.add_user(language_code=language)
    await sandbox.send_command(user, "start", invite.token)
    chat = Chat(sandbox, user)
    await chat.expect()
    if with_visit:
        open_visit(engine, clock, study_id)
    return chat


# Answers that ask the fewest questions: a participant with no symptoms.
SYMPTOM_FIRSTS = [
    "dyspnoea_severity", "cough_severity", "fatigue_severity", "pain_frequency",
    "headache_frequency", "appetite_severity", "nausea_frequency", "vomiting_frequency",
    "diarrhoea_frequency", "constipation_severity", "fever_frequency",
]  # fmt: skip
YES_NO_SIGNS = ["confusion", "seizure", "weakness", "speech", "swelling"]


async def answer_shortest(chat: Chat, first: BotMessage) -> BotMessage:
    """From the first question, answer as a participant with nothing to report; return the
    summary message."""
    message = await chat.press(first, "self")  # respondent
    message = await chat.press(message, "no")  # hospital
    await chat.press_only(message, "+chemo")
    await chat.press_only(chat.sandbox.messages_to(chat.user.id)[chat.seen - 1], "+immuno")
    message = await chat.press(chat.sandbox.messages_to(chat.user.id)[chat.seen - 1], "~d")
    message = await chat.press(message, "no")  # treatment changed
    message = await chat.press(message, "no")  # progression
    message = await chat.press(message, "1")  # activity
    for _ in SYMPTOM_FIRSTS:
        message = await chat.press(message, "0")
    for _ in YES_NO_SIGNS:
        message = await chat.press(message, "no")
    message = await chat.press(message, "8")  # well-being
    message = await chat.press(message, "no")  # call request
    return await chat.press(message, "~s")  # anything else: skip
