"""Guessed invite tokens link nobody: 100,000 through the linking code, and a few through the bot.

The 100,000 go straight to the code the bot's /start runs (`study.invites.looks_like_token`, then
`models.participants.redeem_invite`, as `bot.enrolment.start_link` calls them), without the
per-user throttle, against a database of real invites: valid, used, expired and revoked. Going
through Telegram that many times would take CI too long; the throttle and the reply are tested
through the real bot and the sandbox below.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import string
from collections import Counter

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.deps import BotApp, Deps
from messages.render import render, render_bilingual
from models.db import transaction
from models.participants import issue_invite, redeem_invite
from models.tables import Invite, LinkAttempt, Participant
from sandbox import Sandbox
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from study.invites import looks_like_token
from tests.factories import enroll_participant

GUESSES = int(os.environ.get("FOLLOWUP_GUESSED_TOKENS", "100000"))
TOKEN_CHARS = string.ascii_letters + string.digits + "-_"
HOSTILE_CHARS = "<>&\"' \t\n\x00;%/\\.…中文😀\u202e" + string.ascii_letters
NEUTRAL = plain_text(render_bilingual("neutral"))
GREETING = plain_text(render("greeting", "zh"))


def near_miss(rng: random.Random, token: str) -> str:
    """A real token with one character changed, dropped, added or its case flipped."""
    at = rng.randrange(len(token))
    change = rng.randrange(4)
    if change == 0:
        swap = rng.choice(TOKEN_CHARS.replace(token[at], ""))
        return token[:at] + swap + token[at + 1 :]
    if change == 1:
        return token[:at] + token[at + 1 :]
    if change == 2:
        return token[:at] + rng.choice(TOKEN_CHARS) + token[at:]
    return (
        token[:at] + token[at].swapcase() + token[at + 1 :] if token[at].isalpha() else token + "A"
    )


def guess(rng: random.Random, real: list[str], spent: list[str]) -> tuple[str, str]:
    """One guessed token and its kind: mostly well-formed, some near misses, some malformed."""
    roll = rng.random()
    if roll < 0.60:
        return "random, token-shaped", "".join(rng.choices(TOKEN_CHARS, k=32))
    if roll < 0.72:
        length = rng.randint(1, 64)
        return "random, other length", "".join(rng.choices(TOKEN_CHARS, k=length))
    if roll < 0.87:
        return "near miss of a valid token", near_miss(rng, rng.choice(real))
    if roll < 0.90:
        return "used, expired or revoked token", rng.choice(spent)
    if roll < 0.95:
        return "too long", "".join(rng.choices(TOKEN_CHARS, k=rng.randint(65, 300)))
    length = rng.randint(0, 80)
    return "malformed", "".join(rng.choices(HOSTILE_CHARS, k=length))


def test_a_hundred_thousand_guessed_tokens_link_nobody(engine: Engine, clock: FrozenClock) -> None:
    real = [enroll_participant(engine, clock, f"V{n:03}").token for n in range(100)]
    used = [enroll_participant(engine, clock, f"U{n:02}") for n in range(10)]
    expired = [
        enroll_participant(engine, clock, f"E{n:02}", invite_ttl=dt.timedelta(hours=1)).token
        for n in range(10)
    ]
    revoked = [enroll_participant(engine, clock, f"R{n:02}").token for n in range(10)]
    with transaction(engine) as session:
        for n in range(10):  # a fresh invite revokes the first
            issue_invite(session, study_id=f"R{n:02}", now=clock(),
                         invite_ttl=dt.timedelta(days=30), actor="test")  # fmt: skip
        for n, invite in enumerate(used):
            owner = 900_000 + n
            assert redeem_invite(session, token=invite.token, telegram_user_id=owner,
                                 chat_id=owner, now=clock())  # fmt: skip
    clock.advance(dt.timedelta(hours=2))
    spent = [u.token for u in used] + expired + revoked

    rng = random.Random(int(os.environ.get("FOLLOWUP_GUESS_SEED", "1")))
    guesses = [guess(rng, real, spent) for _ in range(GUESSES)]
    tried = Counter(kind for kind, _ in guesses)
    shaped = [(n, token) for n, (_, token) in enumerate(guesses) if looks_like_token(token)]

    def redeem_all(chunk: list[tuple[int, str]]) -> int:
        """What /start does with each token that passes the shape check: try to redeem it."""
        linked = 0
        with transaction(engine) as session:
            for n, token in chunk:
                guesser = 1_000_000 + n  # a different stranger each time: no throttle applies
                if redeem_invite(session, token=token, telegram_user_id=guesser,
                                 chat_id=guesser, now=clock()) is not None:  # fmt: skip
                    linked += 1
        return linked

    linked = sum(redeem_all(shaped[i : i + 10_000]) for i in range(0, len(shaped), 10_000))
    reached_lookup = len(shaped)

    assert sum(tried.values()) == GUESSES and linked == 0
    assert reached_lookup > 0.8 * GUESSES and tried["near miss of a valid token"] > 0
    with transaction(engine) as session:
        linked_ids = session.exec(
            select(Participant.telegram_user_id).where(
                col(Participant.telegram_user_id).is_not(None)
            )
        ).all()
        invites_used = session.exec(select(Invite).where(col(Invite.used_at).is_not(None))).all()
    assert sorted(i for i in linked_ids if i is not None) == [900_000 + n for n in range(10)]
    assert len(invites_used) == 10
    print(  # noqa: T201  (the figures for docs/reliability.md)
        f"\n{GUESSES} guessed tokens, {reached_lookup} reached the invite lookup, {linked} linked:"
        f" {dict(tried.most_common())}"
    )


GUESSERS = 6


async def test_guessers_get_one_identical_reply_and_each_is_throttled_on_their_own(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    """Six strangers guess at once through the bot: every kind of failure, including a valid
    token once throttled, gets the same neutral message; the throttle is per user."""
    limit = deps.settings.link_attempts_max
    window = dt.timedelta(minutes=deps.settings.link_attempts_window_minutes)
    invites = [enroll_participant(engine, clock, f"G{n:02}") for n in range(GUESSERS + 1)]
    used = enroll_participant(engine, clock, "U00")
    expired = enroll_participant(engine, clock, "E00", invite_ttl=dt.timedelta(minutes=1))
    owner = sandbox.add_user()
    await sandbox.send_command(owner, "start", used.token)
    await sandbox.next_message(owner.id, after=0)
    clock.advance(dt.timedelta(minutes=2))
    real, spent = [i.token for i in invites], [used.token, expired.token]
    rng = random.Random(3)
    guessers = [sandbox.add_user() for _ in range(GUESSERS)]
    kinds: Counter[str] = Counter()
    for sent in range(limit):  # round after round, every guesser sends one bad token
        for user in guessers:
            kind, token = guess(rng, real, spent)
            kinds[kind] += 1
            await sandbox.send_command(user, "start", token)
        for user in guessers:
            await sandbox.next_message(user.id, after=sent)
    for user, invite in zip(guessers, invites, strict=False):  # now a valid token: throttled
        await sandbox.send_command(user, "start", invite.token)
    newcomer = sandbox.add_user()  # no failures of their own: not held back by the others'
    await sandbox.send_command(newcomer, "start", invites[-1].token)
    for user in guessers:
        await sandbox.next_message(user.id, after=limit)
    assert (await sandbox.next_message(newcomer.id, after=0)).text == GREETING

    replies = {(m.html, str(m.reply_markup)) for u in guessers for m in sandbox.messages_to(u.id)}
    assert len(replies) == 1 and plain_text(replies.pop()[0]) == NEUTRAL
    with transaction(engine) as session:
        linked = session.exec(
            select(Participant.study_id).where(col(Participant.telegram_user_id).is_not(None))
        ).all()
        failures = len(session.exec(select(LinkAttempt)).all())
    assert sorted(linked) == [f"G{GUESSERS:02}", "U00"]
    assert failures == GUESSERS * (limit + 1)
    assert len(kinds) >= 4, kinds

    clock.advance(window)  # once the window has passed, the valid token links
    await sandbox.send_command(guessers[0], "start", invites[0].token)
    assert (await sandbox.next_message(guessers[0].id, after=limit + 1)).text == GREETING
