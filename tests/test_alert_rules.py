"""The escalation rules, item by item: thresholds, worsening, answers, emergency phrases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages import alert_rules
from messages.instruments import latest
from messages.phrases import emergency_phrases
from study.alert_rules import (
    AMBER,
    RED,
    RulesError,
    evaluate,
    evaluate_message,
    may_raise_red,
    most_urgent,
    parse_rules,
)
from study.questionnaire import Item, Kind

RULES = alert_rules.current()
SCALES = [i.id for i in latest().items if i.kind is Kind.SCALE_0_4]
SEVERITY = [i for i in SCALES if not i.endswith("_frequency")]
FREQUENCY = [i for i in SCALES if i.endswith("_frequency")]


def tiers(answers: dict[str, str], previous: dict[str, str] | None = None) -> set[tuple[str, str]]:
    return {(h.tier, h.key) for h in evaluate(RULES, answers, previous)}


def test_every_rule_names_an_item_of_the_questionnaire() -> None:
    items = set(latest().by_id)
    assert set(RULES.scores) <= items
    assert set(RULES.worsening_items) <= items
    for rule in RULES.answers:
        assert {c.item for c in rule.when} <= items, rule.rule


@pytest.mark.parametrize("item", SEVERITY)
def test_severity_or_interference_of_4_is_red_and_3_is_amber(item: str) -> None:
    assert tiers({item: "4"}) == {(RED, f"score:{item}")}
    assert tiers({item: "3"}) == {(AMBER, f"score:{item}")}
    assert tiers({item: "2"}) == set()


@pytest.mark.parametrize("item", FREQUENCY)
def test_frequency_of_3_or_4_is_amber_only(item: str) -> None:
    assert tiers({item: "4"}) == {(AMBER, f"score:{item}")}
    assert tiers({item: "3"}) == {(AMBER, f"score:{item}")}
    assert tiers({item: "2"}) == set()


@pytest.mark.parametrize(
    ("answers", "rule"),
    [
        ({"haemoptysis": "yes"}, "haemoptysis"),
        ({"confusion": "yes"}, "confusion"),
        ({"seizure": "yes"}, "seizure"),
        ({"weakness": "yes"}, "weakness"),
        ({"speech": "yes"}, "speech"),
        ({"swelling": "yes"}, "swelling"),
        ({"hospital": "in_now"}, "in_hospital"),
        ({"vital_status": "died"}, "death_reported"),
        ({"fever_38": "yes", "treatment": "chemo;immuno"}, "fever_on_chemo"),
    ],
)
def test_specific_answers_are_red(answers: dict[str, str], rule: str) -> None:
    assert [h.tier for h in evaluate(RULES, answers) if h.rule == rule] == [RED]


@pytest.mark.parametrize(
    "answers",
    [
        {"haemoptysis": "no"},
        {"hospital": "yes"},
        {"vital_status": "alive"},
        {"fever_38": "yes", "treatment": "immuno;radio"},
        {"fever_38": "unsure", "treatment": "chemo"},
        {"fever_38": "no", "treatment": "chemo"},
    ],
)
def test_near_misses_raise_nothing(answers: dict[str, str]) -> None:
    assert evaluate(RULES, answers) == []


def test_call_request_and_stopping_for_side_effects_are_amber() -> None:
    assert tiers({"call_request": "yes"}) == {(AMBER, "call_request:call_request")}
    stopped = {"treatment_changed": "yes", "change_reason": "side_effects"}
    assert tiers(stopped) == {(AMBER, "stopped_side_effects:treatment_changed")}
    assert tiers({"treatment_changed": "yes", "change_reason": "doctor"}) == set()


def test_a_rise_of_two_points_since_the_previous_check_in_is_amber() -> None:
    hits = evaluate(RULES, {"fatigue_severity": "2"}, {"fatigue_severity": "0"})
    assert [(h.tier, h.rule, h.previous, h.value) for h in hits] == [
        (AMBER, "worsening", "0", "2")
    ]
    assert evaluate(RULES, {"fatigue_severity": "2"}, {"fatigue_severity": "1"}) == []
    assert evaluate(RULES, {"fatigue_severity": "1"}, {"fatigue_severity": "3"}) == []


def test_worsening_needs_the_same_item_answered_last_time() -> None:
    assert evaluate(RULES, {"pain_severity": "2"}, {}) == []
    assert evaluate(RULES, {"pain_severity": "2"}, {"pain_frequency": "0"}) == []


def test_activity_worse_by_two_levels_is_amber() -> None:
    assert tiers({"activity": "3"}, {"activity": "1"}) == {(AMBER, "worsening:activity")}


def test_red_comes_before_amber_and_most_urgent_says_red() -> None:
    hits = evaluate(RULES, {"call_request": "yes", "cough_severity": "4"})
    assert [h.tier for h in hits] == [RED, AMBER]
    assert most_urgent(hits) == RED
    assert most_urgent([]) is None


@given(st.dictionaries(st.sampled_from(SCALES), st.sampled_from("01234")),
       st.dictionaries(st.sampled_from(SCALES), st.sampled_from("01234")))  # fmt: skip
def test_scores_alone_alert_exactly_as_the_thresholds_say(
    answers: dict[str, str], previous: dict[str, str]
) -> None:
    hits = evaluate(RULES, answers, previous)
    red = {h.item for h in hits if h.tier == RED}
    assert red == {i for i, v in answers.items() if v == "4" and i in SEVERITY}
    rose = {i for i, v in answers.items() if i in previous and int(v) - int(previous[i]) >= 2}
    assert {h.item for h in hits if h.rule == "worsening"} == rose


@pytest.mark.parametrize(
    "text",
    ["chest pain", "I have CHEST PAIN since this morning", "my father can't breathe well",
     "胸痛", "他今天呼吸困难，很难受", "刚才抽搐了一次", "喘不上气", "病人昏迷了",
     "ｃｈｅｓｔ ｐａｉｎ"],
)  # fmt: skip
def test_emergency_phrases_in_both_languages_even_inside_a_sentence(text: str) -> None:
    hit = evaluate_message(RULES, text, emergency_phrases())
    assert hit is not None and hit.tier == RED and hit.rule == "emergency_phrase"
    assert hit.value in emergency_phrases()


@pytest.mark.parametrize("text", ["I feel fine", "胸部CT结果正常", "start", "breathing is ok"])
def test_ordinary_messages_are_not_emergencies(text: str) -> None:
    assert evaluate_message(RULES, text, emergency_phrases()) is None


def test_a_malformed_rules_file_is_refused_with_its_place() -> None:
    with pytest.raises(RulesError, match=r"scores\.x"):
        parse_rules({"version": 9, "scores": {"x": {"PURPLE": 3}}})
    with pytest.raises(RulesError, match="answers"):
        parse_rules({"version": 9, "answers": [{"rule": "r", "tier": "RED", "when": []}]})


def test_every_alert_knows_its_rules_version() -> None:
    assert RULES.name == f"rules-v{alert_rules.versions()[-1]}"


PRESSABLE = [i for i in latest().items if i.kind in (Kind.SINGLE, Kind.SCALE_0_4, Kind.SCALE_0_10)]


@pytest.mark.parametrize("item", PRESSABLE, ids=lambda i: i.id)
def test_every_press_that_raises_red_is_taken_before_others(item: Item) -> None:
    """`may_raise_red` is a superset: every button answer that raises a RED alert is urgent."""
    context = {"treatment": "chemo"}  # what fever_on_chemo needs besides the press
    before = {h.key for h in evaluate(RULES, context) if h.tier == RED}
    for code in item.codes():
        after = {h.key for h in evaluate(RULES, {**context, item.id: code}) if h.tier == RED}
        if after - before:
            assert may_raise_red(RULES, code), (item.id, code)


def test_presses_that_cannot_raise_red_wait_their_turn() -> None:
    calm = ["0", "1", "2", "3", "no", "alive", "self", "proxy", "~b", "~s", "+chemo", "-chemo"]
    assert [c for c in calm if may_raise_red(RULES, c)] == []
    assert all(may_raise_red(RULES, c) for c in ["4", "yes", "in_now", "died"])
    # Done on a multiple choice may complete a rule's `has` condition (treatment has chemo).
    assert may_raise_red(RULES, "~d", completes_choice=True)
