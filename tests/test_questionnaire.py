"""The pure questionnaire engine: every branch of the definition, proxies and death reports."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.instruments import definition, latest, missing_texts, versions
from messages.render import LANGUAGES
from study import questionnaire as qn
from study.validators import Problem

Q = latest()
CONTEXT = qn.Context(today=dt.date(2026, 3, 2), enrolled_on=dt.date(2026, 1, 15))
SYMPTOM_GROUPS = {
    item.id: [i.id for i in Q.items if any(c.item == item.id for c in i.when)]
    for item in Q.items
    if item.kind is qn.Kind.SCALE_0_4 and not item.when
}


def walk(choices: dict[str, str]) -> tuple[list[str], qn.Step]:
    """Answer each question from `choices` (else its first code, or a typed default)."""
    answers: dict[str, str] = {}
    asked: list[str] = []
    while True:
        step = qn.next_step(Q, answers)
        if not isinstance(step, qn.Ask):
            return asked, step
        item = step.item
        asked.append(item.id)
        assert len(asked) < 100
        answers[item.id] = choices.get(item.id) or default_answer(item)


def default_answer(item: qn.Item) -> str:
    if item.codes():
        return item.codes()[0]
    return {qn.Kind.NUMBER: "1", qn.Kind.DATE: "2026-02", qn.Kind.TEXT: "ok"}[item.kind]


def test_every_version_loads_with_complete_texts_in_every_language() -> None:
    assert versions() == [1]
    for version in versions():
        assert definition(version).name == f"checkin-v{version}"
        for language in LANGUAGES:
            assert missing_texts(version, language) == []


def test_self_answering_skips_vital_status_and_ends_in_the_summary() -> None:
    asked, step = walk({"respondent": "self", "hospital": "no", "treatment_changed": "no"})
    assert asked[:2] == ["respondent", "hospital"]
    assert "vital_status" not in asked and "death_date" not in asked
    assert isinstance(step, qn.Review)
    assert [i.id for i in step.items] == asked
    assert asked[-3:] == ["wellbeing", "call_request", "anything_else"]


def test_proxy_for_a_living_participant_answers_everything_else() -> None:
    asked, step = walk({"respondent": "proxy", "vital_status": "alive"})
    assert asked[:3] == ["respondent", "vital_status", "hospital"]
    assert isinstance(step, qn.Review)


def test_proxy_reporting_a_death_gives_a_date_and_nothing_more() -> None:
    asked, step = walk({"respondent": "proxy", "vital_status": "died"})
    assert asked == ["respondent", "vital_status", "death_date"]
    assert step == qn.Ended("death_report")


def test_death_report_answers_after_the_date_do_not_count() -> None:
    answers = {"respondent": "proxy", "vital_status": "died", "death_date": "2026-02",
               "hospital": "yes"}  # fmt: skip
    assert "hospital" not in qn.effective_answers(Q, answers)
    assert qn.next_step(Q, answers) == qn.Ended("death_report")


@pytest.mark.parametrize(
    ("hospital", "follow_ups"),
    [("no", []), ("yes", ["hospital_times", "hospital_reason"]), ("in_now", ["hospital_reason"])],
)
def test_hospital_follow_ups(hospital: str, follow_ups: list[str]) -> None:
    asked, _ = walk({"respondent": "self", "hospital": hospital})
    index = asked.index("hospital")
    assert asked[index + 1 : index + 1 + len(follow_ups)] == follow_ups
    assert asked[index + 1 + len(follow_ups)] == "treatment"


@pytest.mark.parametrize(("changed", "reason_asked"), [("yes", True), ("no", False),
                                                        ("unsure", False)])  # fmt: skip
def test_treatment_change_reason_only_when_it_changed(changed: str, reason_asked: bool) -> None:
    asked, _ = walk({"respondent": "self", "treatment_changed": changed})
    assert ("change_reason" in asked) is reason_asked


@pytest.mark.parametrize("first", sorted(SYMPTOM_GROUPS))
def test_a_zero_on_the_first_attribute_skips_the_rest_of_that_symptom(first: str) -> None:
    rest = SYMPTOM_GROUPS[first]
    asked_zero, _ = walk({"respondent": "self", first: "0"})
    assert first in asked_zero and not set(rest) & set(asked_zero)
    for score in "1234":
        asked, _ = walk({"respondent": "self", first: score})
        index = asked.index(first)
        assert asked[index + 1 : index + 1 + len(rest)] == rest


def test_symptom_follow_ups_include_blood_and_temperature() -> None:
    assert SYMPTOM_GROUPS["cough_severity"] == ["cough_interference", "haemoptysis"]
    assert SYMPTOM_GROUPS["fever_frequency"] == ["fever_severity", "fever_38"]
    assert SYMPTOM_GROUPS["pain_frequency"] == ["pain_severity", "pain_interference"]
    assert SYMPTOM_GROUPS["diarrhoea_frequency"] == []


def test_changing_an_earlier_answer_drops_answers_no_longer_asked() -> None:
    answers = {"respondent": "self", "hospital": "yes", "hospital_times": "2",
               "hospital_reason": "pneumonia"}  # fmt: skip
    answers["hospital"] = "no"
    assert set(qn.effective_answers(Q, answers)) == {"respondent", "hospital"}
    step = qn.next_step(Q, answers)
    assert isinstance(step, qn.Ask) and step.item.id == "treatment"


def test_back_follows_the_questions_that_were_asked() -> None:
    answers = {"respondent": "self", "hospital": "no"}
    assert qn.previous_item(Q, answers, "hospital") == Q.item("respondent")
    assert qn.previous_item(Q, answers, "treatment") == Q.item("hospital")
    assert qn.previous_item(Q, answers, "respondent") is None
    proxy = {"respondent": "proxy", "vital_status": "alive"}
    assert qn.previous_item(Q, proxy, "hospital") == Q.item("vital_status")
    full, step = walk({"respondent": "self"})
    assert isinstance(step, qn.Review)
    answered = {i: default_answer(Q.item(i)) for i in full}
    assert qn.previous_item(Q, answered, None) == Q.item("anything_else")


def test_multiple_choice_toggles_and_exclusive_options() -> None:
    item = Q.item("treatment")
    chosen = qn.toggle(item, frozenset(), "chemo")
    chosen = qn.toggle(item, chosen, "immuno")
    assert chosen == {"chemo", "immuno"}
    assert qn.toggle(item, chosen, "none") == {"none"}
    assert qn.toggle(item, frozenset({"none"}), "radio") == {"radio"}
    assert qn.toggle(item, chosen, "chemo") == {"immuno"}
    assert qn.toggle(item, chosen, "bogus") == chosen
    assert qn.accept(item, qn.Choice("immuno;chemo"), CONTEXT) == "chemo;immuno"
    assert qn.accept(item, qn.Choice(""), CONTEXT) == Problem("choose_one")


def test_button_inputs_must_be_codes_of_the_item() -> None:
    assert qn.accept(Q.item("respondent"), qn.Choice("proxy"), CONTEXT) == "proxy"
    assert qn.accept(Q.item("respondent"), qn.Choice("died"), CONTEXT) == Problem("use_buttons")
    assert qn.accept(Q.item("respondent"), qn.Typed("me"), CONTEXT) == Problem("use_buttons")
    assert qn.accept(Q.item("respondent"), qn.Skip(), CONTEXT) == Problem("use_buttons")
    assert qn.accept(Q.item("wellbeing"), qn.Choice("10"), CONTEXT) == "10"
    assert qn.accept(Q.item("wellbeing"), qn.Typed(" ７ "), CONTEXT) == "7"
    assert qn.accept(Q.item("pain_frequency"), qn.Typed("5"), CONTEXT) == Problem(
        "scale", {"min": 0, "max": 4}
    )
    assert qn.accept(Q.item("anything_else"), qn.Skip(), CONTEXT) == qn.SKIPPED


def test_typed_items_validate_their_input() -> None:
    times = Q.item("hospital_times")
    assert qn.accept(times, qn.Typed("3次"), CONTEXT) == "3"
    assert qn.accept(times, qn.Typed("0"), CONTEXT) == Problem("number", {"min": 1, "max": 50})
    death = Q.item("death_date")
    assert qn.accept(death, qn.Typed("2026年2月"), CONTEXT) == "2026-02"
    assert qn.accept(death, qn.Typed("2026-02-14"), CONTEXT) == "2026-02-14"
    assert qn.accept(death, qn.Typed("2026-04"), CONTEXT) == Problem("date_future")
    assert qn.accept(death, qn.Typed("2025-12-31"), CONTEXT) == Problem(
        "date_before_enrolment", {"date": "2026-01-15"}
    )
    reason = Q.item("hospital_reason")
    assert qn.accept(reason, qn.Typed("x" * 201), CONTEXT) == Problem(
        "text_too_long", {"max": 200}
    )


def test_definition_errors_are_named() -> None:
    with pytest.raises(qn.DefinitionError, match="later or unknown"):
        qn.parse_definition({"instrument": "x", "version": 1, "items": [
            {"id": "a", "type": "single", "options": ["y"], "when": [{"item": "b", "in": ["y"]}]},
            {"id": "b", "type": "single", "options": ["y"]},
        ]})  # fmt: skip
    with pytest.raises(qn.DefinitionError, match="twice"):
        qn.parse_definition({"instrument": "x", "version": 1, "items": [
            {"id": "a", "type": "text"}, {"id": "a", "type": "text"}]})  # fmt: skip


@st.composite
def any_walk(draw: st.DrawFn) -> dict[str, str]:
    """Answers along one path through the questionnaire, each drawn from the item's codes."""
    answers: dict[str, str] = {}
    while True:
        step = qn.next_step(Q, answers)
        if not isinstance(step, qn.Ask):
            return answers
        item = step.item
        assert item.id not in answers
        if item.kind is qn.Kind.MULTI:
            chosen = draw(st.lists(st.sampled_from(item.options), min_size=1, unique=True))
            answers[item.id] = qn.join_codes(item, chosen)
        elif item.codes():
            answers[item.id] = draw(st.sampled_from(item.codes()))
        else:
            answers[item.id] = default_answer(item)


@settings(max_examples=300, deadline=None)
@given(any_walk())
def test_every_path_ends_in_the_summary_or_a_death_report(answers: dict[str, str]) -> None:
    step = qn.next_step(Q, answers)
    died = answers.get("vital_status") == "died"
    assert isinstance(step, qn.Ended if died else qn.Review)
    assert qn.effective_answers(Q, answers) == answers
    if died:
        assert set(answers) == {"respondent", "vital_status", "death_date"}
    for first, rest in SYMPTOM_GROUPS.items():
        if not died:
            assert first in answers
            assert (answers[first] == "0") == (not set(rest) & set(answers)) or not rest


def test_tick_and_untick_are_idempotent() -> None:
    """A repeated or replayed press changes nothing: tick means ticked, untick means not."""
    item = Q.item("treatment")
    chosen = qn.tick(item, frozenset(), "chemo", on=True)
    assert qn.tick(item, chosen, "chemo", on=True) == {"chemo"}
    assert qn.tick(item, chosen, "chemo", on=False) == frozenset()
    assert qn.tick(item, frozenset(), "chemo", on=False) == frozenset()
    assert qn.tick(item, chosen, "none", on=True) == {"none"}
    assert qn.tick(item, chosen, "bogus", on=True) == chosen
