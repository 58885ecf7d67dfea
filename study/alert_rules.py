"""The escalation rules engine: answers or a free message in, the alerts to raise out.

Pure: no Telegram, no SQL, no clock. The rules are data (messages/alert_rules/rules-v<N>.yaml),
parsed here into `Rules`; each `Hit` names the rule, the item and the values that raised it, so
the coordinator's notice can say why in plain words and the alert can record the rules version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from study.emergency import mentions_emergency

RED, AMBER, ADMIN = "RED", "AMBER", "ADMIN"
TIERS = (RED, AMBER)
MULTI_SEPARATOR = ";"
EMERGENCY_RULE = "emergency_phrase"


class RulesError(ValueError):
    """The rules definition is inconsistent; the message says where."""


@dataclass(frozen=True)
class Condition:
    """Holds when `item` was answered with one of `values`, or (`has`) a choice including it."""

    item: str
    values: frozenset[str] = frozenset()
    has: str | None = None

    def holds(self, answers: Mapping[str, str]) -> bool:
        value = answers.get(self.item)
        if value is None:
            return False
        if self.has is not None:
            return self.has in value.split(MULTI_SEPARATOR)
        return value in self.values


@dataclass(frozen=True)
class AnswerRule:
    rule: str
    tier: str
    when: tuple[Condition, ...]


@dataclass(frozen=True)
class Rules:
    version: int
    instrument: str
    scores: Mapping[str, Mapping[str, int]]  # item -> tier -> lowest score raising it
    worsening_tier: str
    worsening_points: int
    worsening_items: tuple[str, ...]
    answers: tuple[AnswerRule, ...]
    emergency_tier: str

    @property
    def name(self) -> str:
        return f"rules-v{self.version}"


@dataclass(frozen=True)
class Hit:
    """One reason to raise an alert. `key` is unique per check-in: one alert per reason."""

    tier: str
    rule: str
    item: str | None = None
    value: str | None = None
    previous: str | None = None

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.item}" if self.item else self.rule


def _tier(value: Any, where: str) -> str:
    if value not in TIERS:
        raise RulesError(f"{where}: tier must be RED or AMBER, not {value!r}")
    return str(value)


def _condition(raw: Mapping[str, Any], where: str) -> Condition:
    if "item" not in raw or ("in" in raw) == ("has" in raw):
        raise RulesError(f"{where}: a condition needs `item` and exactly one of `in` or `has`")
    if "has" in raw:
        return Condition(str(raw["item"]), has=str(raw["has"]))
    return Condition(str(raw["item"]), frozenset(str(v) for v in raw["in"]))


def parse_rules(data: Mapping[str, Any]) -> Rules:
    """Check and parse a rules definition (the YAML, loaded)."""
    scores: dict[str, dict[str, int]] = {}
    for item, tiers in (data.get("scores") or {}).items():
        scores[str(item)] = {_tier(t, f"scores.{item}"): int(s) for t, s in tiers.items()}
    worsening = data.get("worsening") or {}
    answers = []
    for n, raw in enumerate(data.get("answers") or []):
        where = f"answers[{n}]"
        when = tuple(_condition(c, where) for c in raw.get("when") or [])
        if not when:
            raise RulesError(f"{where}: `when` needs at least one condition")
        answers.append(AnswerRule(str(raw["rule"]), _tier(raw["tier"], where), when))
    if len({a.rule for a in answers}) != len(answers):
        raise RulesError("answers: every rule needs its own name")
    return Rules(
        version=int(data["version"]),
        instrument=str(data.get("instrument", "checkin")),
        scores=scores,
        worsening_tier=_tier(worsening.get("tier", AMBER), "worsening"),
        worsening_points=int(worsening.get("points", 0)),
        worsening_items=tuple(str(i) for i in worsening.get("items") or []),
        answers=tuple(answers),
        emergency_tier=_tier((data.get("emergency") or {}).get("tier", RED), "emergency"),
    )


def _score(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _score_hit(rules: Rules, item: str, value: str) -> Hit | None:
    score = _score(value)
    if score is None:
        return None
    for tier in TIERS:  # the most urgent tier that applies
        lowest = rules.scores[item].get(tier)
        if lowest is not None and score >= lowest:
            return Hit(tier, "score", item, value)
    return None


def _worsening_hit(rules: Rules, item: str, value: str, previous: str | None) -> Hit | None:
    now, before = _score(value), _score(previous)
    if now is None or before is None or rules.worsening_points <= 0:
        return None
    if now - before >= rules.worsening_points:
        return Hit(rules.worsening_tier, "worsening", item, value, previous)
    return None


def evaluate(
    rules: Rules, answers: Mapping[str, str], previous: Mapping[str, str] | None = None
) -> list[Hit]:
    """Every reason these answers give to alert, most urgent first, in the rules' order.

    `previous` holds the same participant's answers from their previous check-in; an item that
    was not answered then (or now) is never "worse".
    """
    hits: list[Hit] = []
    for item in rules.scores:
        if item in answers:
            hit = _score_hit(rules, item, answers[item])
            if hit is not None:
                hits.append(hit)
    if previous:
        for item in rules.worsening_items:
            if item in answers:
                hit = _worsening_hit(rules, item, answers[item], previous.get(item))
                if hit is not None:
                    hits.append(hit)
    for rule in rules.answers:
        if all(c.holds(answers) for c in rule.when):
            item = rule.when[0].item
            hits.append(Hit(rule.tier, rule.rule, item, answers[item]))
    return sorted(hits, key=lambda h: TIERS.index(h.tier))


def may_raise_red(rules: Rules, code: str, *, completes_choice: bool = False) -> bool:
    """Whether a pressed button's answer code could raise a RED alert, on whichever item it
    answers: a score at or above some item's RED threshold, or an answer a RED rule names.
    `completes_choice`: the press ends a multiple-choice answer (its Done button), which a RED
    rule's `has` condition may then hold for.

    A superset, decided before the check-in turn knows the item; the turn decides. A press that
    may (the 0-4 "4", a "yes") is stored before other participants' presses that cannot.
    """
    score = _score(code)
    if score is not None and any(
        RED in tiers and score >= tiers[RED] for tiers in rules.scores.values()
    ):
        return True
    for rule in rules.answers:
        if rule.tier != RED:
            continue
        for condition in rule.when:
            if code in condition.values or (condition.has is not None and completes_choice):
                return True
    return False


def matching_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first emergency phrase found anywhere in `text` (case and width ignored), or None."""
    for phrase in phrases:
        if mentions_emergency(text, [phrase]):
            return phrase
    return None


def evaluate_message(rules: Rules, text: str, phrases: Sequence[str]) -> Hit | None:
    """An emergency phrase in any message, at any time: the one rule for free text."""
    phrase = matching_phrase(text, phrases)
    if phrase is None:
        return None
    return Hit(rules.emergency_tier, EMERGENCY_RULE, None, phrase)


def most_urgent(hits: Sequence[Hit]) -> str | None:
    """RED if any hit is RED, else AMBER if any, else None."""
    tiers = {h.tier for h in hits}
    return next((t for t in TIERS if t in tiers), None)
