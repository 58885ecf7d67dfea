"""Consent scopes as pure rules, the send rule after a withdrawal, stop words and emergencies."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from messages.phrases import emergency_phrases, stop_words
from study.consent import (
    Change,
    ConsentError,
    ConsentState,
    Samples,
    Scope,
    apply,
    derive,
    is_stop_request,
    may_send,
    offered_scopes,
)
from study.emergency import mentions_emergency


@dataclass
class Event:
    scope: str
    change: str
    samples: str | None = None


@dataclass
class Person:
    status: str = "active"
    chat_contact: bool = True
    unreachable: bool = False
    telegram_chat_id: int | None = 42


def test_enrolment_consents_to_study_and_chat_and_the_sample_part_if_joined() -> None:
    assert derive([], biospecimen_now=True) == ConsentState(biospecimen=True)
    assert offered_scopes(derive([], biospecimen_now=False)) == [Scope.CONTACT, Scope.STUDY]


def test_leaving_the_study_ends_chat_and_re_consent_brings_both_back() -> None:
    left = derive([Event("study", "withdraw")], biospecimen_now=False)
    assert (left.in_study, left.chat_allowed) == (False, False)
    back = derive([Event("study", "withdraw"), Event("study", "restore")], biospecimen_now=False)
    assert back.chat_allowed and back.in_study


def test_chat_stays_off_after_re_consent_to_the_study_if_chat_was_left_first() -> None:
    events = [Event("contact", "withdraw"), Event("study", "withdraw"), Event("study", "restore")]
    state = derive(events, biospecimen_now=False)
    assert state.in_study and not state.chat_allowed
    assert offered_scopes(state) == [Scope.STUDY]


def test_the_sample_part_needs_a_samples_choice_and_remembers_it() -> None:
    with pytest.raises(ConsentError):
        apply(ConsentState(biospecimen=True), Scope.BIOSPECIMEN, Change.WITHDRAW, None)
    state = apply(ConsentState(biospecimen=True), Scope.BIOSPECIMEN, Change.WITHDRAW,
                  Samples.KEEP)  # fmt: skip
    assert (state.biospecimen, state.samples) == (False, Samples.KEEP)
    # The flag is now False, but the first event shows they had joined at enrolment.
    replayed = derive([Event("biospecimen", "withdraw", "keep")], biospecimen_now=False)
    assert replayed == state


@pytest.mark.parametrize(
    ("state", "scope", "change"),
    [
        (ConsentState(), Scope.CONTACT, Change.RESTORE),  # already has it
        (ConsentState(in_study=False), Scope.CONTACT, Change.WITHDRAW),  # nothing to stop
        (ConsentState(in_study=False), Scope.CONTACT, Change.RESTORE),  # needs the study first
        (ConsentState(in_study=False), Scope.STUDY, Change.WITHDRAW),
        (ConsentState(), Scope.BIOSPECIMEN, Change.WITHDRAW),  # never joined
    ],
)
def test_a_change_that_changes_nothing_is_refused(
    state: ConsentState, scope: Scope, change: Change
) -> None:
    samples = Samples.DESTROY if scope is Scope.BIOSPECIMEN else None
    with pytest.raises(ConsentError):
        apply(state, scope, change, samples)


def test_only_the_post_withdrawal_replies_reach_someone_who_left_chat() -> None:
    left = Person(chat_contact=False)
    assert may_send(Person(), "prompt:P001:1")
    assert not may_send(left, "prompt:P001:1")
    assert not may_send(left, "reminder-1:P001:1")
    for purpose in ("withdrawal-confirmation:P001:3", "withdrawn-reply:P001:2026-03-02",
                    "withdrawn-emergency:P001:77"):  # fmt: skip
        assert may_send(left, purpose)
        assert may_send(Person(status="withdrawn", chat_contact=False), purpose)
        assert not may_send(Person(status="deceased", chat_contact=False), purpose)
        assert not may_send(Person(chat_contact=False, telegram_chat_id=None), purpose)


def test_the_condolence_goes_only_while_a_death_report_awaits_a_coordinator() -> None:
    condolence = "checkin:17:condolence"
    reported = Person(status="death_reported")
    assert may_send(reported, condolence)
    assert not may_send(reported, "checkin:17:5")  # nothing else, questions included
    assert not may_send(reported, "prompt:P001:1")
    assert not may_send(Person(), condolence)  # the report corrected: they are alive
    assert not may_send(Person(status="deceased"), condolence)  # confirmed: nothing more
    assert not may_send(Person(status="withdrawn"), condolence)
    assert not may_send(Person(status="death_reported", chat_contact=False), condolence)
    assert not may_send(Person(status="death_reported", unreachable=True), condolence)
    assert not may_send(Person(status="death_reported", telegram_chat_id=None), condolence)
    assert not may_send(reported, "checkin:17:condolence:x")  # the purpose exactly


@pytest.mark.parametrize(
    "text", ["stop", "STOP!", " Stop. ", "unsubscribe", "退出", "别再发了！", "不想参加了。"]
)
def test_stop_words_match_whole_short_messages(text: str) -> None:
    assert is_stop_request(text, stop_words())


@pytest.mark.parametrize(
    "text", ["don't stop the reminders", "我不想停药", "退出了医院", "", "   ", "stopped"]
)
def test_longer_messages_are_not_stop_words(text: str) -> None:
    assert not is_stop_request(text, stop_words())


def test_emergency_phrases_in_any_message() -> None:
    assert mentions_emergency("今天胸痛得厉害", emergency_phrases())
    assert mentions_emergency("I CAN'T BREATHE", emergency_phrases())
    assert not mentions_emergency("今天还好", emergency_phrases())
