"""Alerts go first: a coordinator's notice is sent before the participant's next question and is
claimed before queued participant messages; reads wait for no writer."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp, Deps
from models import outbox
from models.db import read_transaction, transaction
from models.participants import participant_by_study_id
from models.tables import Participant
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from tests.checkin_chat import linked_chat
from tests.factories import enroll_participant
from tests.test_alerts_e2e import coordinator, red_cough


async def test_a_red_notice_is_sent_before_the_participants_next_question(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await red_cough(chat)
    following = await chat.expect()  # the question after the emergency text
    notice = await sandbox.next_message(boss.id, after=0)
    assert "[RED] Alert #1" in notice.text
    sends = [c.params.get("chat_id") for c in sandbox.state.calls if c.method == "sendMessage"]
    to_boss = sends.index(boss.id)
    after_press = [i for i, chat_id in enumerate(sends) if chat_id == chat.user.id][-2:]
    assert len(after_press) == 2 and following.text  # the emergency text, then the question
    assert to_boss < min(after_press)


def test_coordinator_rows_are_claimed_before_queued_participant_messages(
    engine: Engine, clock: FrozenClock
) -> None:
    enroll_participant(engine, clock)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.id is not None
        participant.telegram_user_id = participant.telegram_chat_id = 4242
        session.add(participant)
        for n in range(5):
            outbox.enqueue(session, purpose=f"prompt:P001:{n}", chat_id=4242, text="q",
                           participant_id=participant.id, now=clock())  # fmt: skip
        outbox.enqueue(session, purpose="alert:1", chat_id=-100, text="RED", now=clock())
    with transaction(engine) as session:
        first = outbox.claim(session, now=clock(), limit=2)
    assert [m.purpose for m in first] == ["alert:1", "prompt:P001:0"]


def test_a_read_waits_for_no_writer_and_sees_only_what_is_committed(
    engine: Engine, clock: FrozenClock
) -> None:
    enroll_participant(engine, clock)
    with transaction(engine) as writer:
        writer.execute(text("UPDATE participant SET language = 'en'"))
        writer.flush()
        # Another connection, while this one holds the write lock (SQLite) or the row (PG).
        with read_transaction(engine) as reader:
            seen = reader.exec(select(Participant.language)).one()
    assert seen == "zh"
    with read_transaction(engine) as reader:
        participant = reader.exec(select(Participant)).one()
    assert participant.language == "en"  # and readable after the read transaction ended
