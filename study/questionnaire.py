"""The questionnaire engine: definition, answers so far and an input in; the next step out.

Pure: no Telegram, no SQL, no clock. The definition is data (messages/questionnaires/); answers
are coded values keyed by item id. Which item comes next is always recomputed from the answers,
so going back, editing from the summary or resuming after a restart need no extra state.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from study.validators import Problem, parse_date, parse_number, parse_text


class Kind(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    SCALE_0_4 = "scale0_4"
    SCALE_0_10 = "scale0_10"
    NUMBER = "number"
    DATE = "date"
    TEXT = "text"


BUTTON_KINDS = frozenset({Kind.SINGLE, Kind.MULTI, Kind.SCALE_0_4, Kind.SCALE_0_10})
SCALE_TOP = {Kind.SCALE_0_4: 4, Kind.SCALE_0_10: 10}
MULTI_SEPARATOR = ";"
SKIPPED = ""  # the coded value of an optional item the respondent chose to skip
_CODE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_ITEM_ID = re.compile(r"^[a-z0-9_]{1,32}$")


class DefinitionError(ValueError):
    """The questionnaire definition is inconsistent; the message says where."""


@dataclass(frozen=True)
class Condition:
    """Holds when `item` was asked and answered with one of `values` (or none of them)."""

    item: str
    values: frozenset[str]
    negate: bool = False

    def holds(self, answers: Mapping[str, str]) -> bool:
        value = answers.get(self.item)
        if value is None:
            return False
        return (value in self.values) != self.negate


@dataclass(frozen=True)
class Item:
    id: str
    kind: Kind
    options: tuple[str, ...] = ()
    when: tuple[Condition, ...] = ()
    labels: str | None = None
    minimum: int = 0
    maximum: int = 0
    max_length: int = 200
    optional: bool = False
    month_year: bool = False
    not_before_enrolment: bool = False
    ends: str | None = None
    exclusive: frozenset[str] = frozenset()

    def codes(self) -> tuple[str, ...]:
        """Every coded value a button can give: the options, or the points of a scale."""
        if self.kind in SCALE_TOP:
            return tuple(str(n) for n in range(SCALE_TOP[self.kind] + 1))
        return self.options


@dataclass(frozen=True)
class Questionnaire:
    instrument: str
    version: int
    items: tuple[Item, ...]
    by_id: dict[str, Item] = field(repr=False, compare=False, default_factory=dict)

    @property
    def name(self) -> str:
        """The instrument version as stored with every answer, e.g. "checkin-v1"."""
        return f"{self.instrument}-v{self.version}"

    def item(self, item_id: str) -> Item:
        return self.by_id[item_id]


def parse_definition(data: Mapping[str, Any]) -> Questionnaire:
    """Build a questionnaire from its data, checking ids, codes and skip logic."""
    items: list[Item] = []
    seen: set[str] = set()
    for raw in data["items"]:
        item = _parse_item(raw, seen)
        seen.add(item.id)
        items.append(item)
    questionnaire = Questionnaire(
        instrument=str(data["instrument"]), version=int(data["version"]), items=tuple(items)
    )
    questionnaire.by_id.update({item.id: item for item in items})
    return questionnaire


def _parse_item(raw: Mapping[str, Any], earlier: set[str]) -> Item:
    item_id = str(raw["id"])
    if not _ITEM_ID.match(item_id):
        raise DefinitionError(f"item id {item_id!r} must be lower case letters, digits and _")
    if item_id in earlier:
        raise DefinitionError(f"item {item_id!r} is defined twice")
    kind = Kind(raw["type"])
    options = tuple(str(o) for o in raw.get("options", ()))
    if (kind in (Kind.SINGLE, Kind.MULTI)) != bool(options):
        raise DefinitionError(f"item {item_id!r}: options belong to single and multi items")
    for code in options:
        if not _CODE.match(code):
            raise DefinitionError(f"item {item_id!r}: option code {code!r} is not a short code")
    when = []
    for cond in raw.get("when", ()):
        if cond["item"] not in earlier:
            raise DefinitionError(f"item {item_id!r}: condition on a later or unknown item")
        negate = "not_in" in cond
        values = frozenset(str(v) for v in cond["not_in" if negate else "in"])
        when.append(Condition(str(cond["item"]), values, negate))
    return Item(
        id=item_id,
        kind=kind,
        options=options,
        when=tuple(when),
        labels=raw.get("labels"),
        minimum=int(raw.get("min", 0)),
        maximum=int(raw.get("max", 0)),
        max_length=int(raw.get("max_length", 200)),
        optional=bool(raw.get("optional", False)),
        month_year=bool(raw.get("month_year", False)),
        not_before_enrolment=raw.get("not_before") == "enrolment",
        ends=raw.get("ends"),
        exclusive=frozenset(str(c) for c in raw.get("exclusive", ())),
    )


# ---- where the respondent is ----------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    item: Item


@dataclass(frozen=True)
class Review:
    """Everything applicable is answered: show the summary (these items, in order)."""

    items: tuple[Item, ...]


@dataclass(frozen=True)
class Ended:
    """An item with `ends` was answered, e.g. a reported death: nothing more is asked."""

    reason: str


Step = Ask | Review | Ended


def applicable(q: Questionnaire, answers: Mapping[str, str]) -> list[Item]:
    """The items that would be asked given these answers, in order.

    Answers to items that are no longer asked (after an earlier answer changed) are ignored,
    including by the conditions of later items.
    """
    asked: list[Item] = []
    effective: dict[str, str] = {}
    for item in q.items:
        if all(cond.holds(effective) for cond in item.when):
            asked.append(item)
            if item.id in answers:
                effective[item.id] = answers[item.id]
                if item.ends is not None:
                    break
    return asked


def effective_answers(q: Questionnaire, answers: Mapping[str, str]) -> dict[str, str]:
    """The answers that count: those to items that are still asked."""
    return {i.id: answers[i.id] for i in applicable(q, answers) if i.id in answers}


def next_step(q: Questionnaire, answers: Mapping[str, str]) -> Step:
    """The first unanswered item that applies, else the end or the summary."""
    items = applicable(q, answers)
    for item in items:
        if item.id not in answers:
            return Ask(item)
        if item.ends is not None:
            return Ended(item.ends)
    return Review(tuple(items))


def previous_item(
    q: Questionnaire, answers: Mapping[str, str], current: str | None
) -> Item | None:
    """The item before `current` (None: the summary) among those that apply; None at the start."""
    items = applicable(q, answers)
    ids = [i.id for i in items]
    if current is None:
        return items[-1] if items else None
    if current not in ids:
        return None
    index = ids.index(current)
    return items[index - 1] if index > 0 else None


# ---- answering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What validation needs to know about the respondent's world: no clock reads here."""

    today: dt.date
    enrolled_on: dt.date


@dataclass(frozen=True)
class Choice:
    code: str


@dataclass(frozen=True)
class Typed:
    text: str


@dataclass(frozen=True)
class Skip:
    pass


Input = Choice | Typed | Skip


def accept(item: Item, given: Input, context: Context) -> str | Problem:
    """The coded value for this input to `item`, or the problem to explain before re-asking."""
    if isinstance(given, Skip):
        return SKIPPED if item.optional else Problem("use_buttons")
    if isinstance(given, Choice):
        if item.kind is Kind.MULTI:
            selected = [c for c in given.code.split(MULTI_SEPARATOR) if c]
            if not selected:
                return Problem("choose_one")
            if any(c not in item.options for c in selected):
                return Problem("use_buttons")
            return join_codes(item, selected)
        if item.kind in BUTTON_KINDS and given.code in item.codes():
            return given.code
        return Problem("use_buttons")
    return _accept_typed(item, given.text, context)


def _accept_typed(item: Item, text: str, context: Context) -> str | Problem:
    if item.kind is Kind.NUMBER:
        return parse_number(text, minimum=item.minimum, maximum=item.maximum)
    if item.kind is Kind.DATE:
        not_before = context.enrolled_on if item.not_before_enrolment else None
        return parse_date(
            text, today=context.today, not_before=not_before, month_year=item.month_year
        )
    if item.kind is Kind.TEXT:
        return parse_text(text, max_length=item.max_length)
    if item.kind in SCALE_TOP:
        # A typed digit is as good as a press for people who find small buttons hard.
        top = SCALE_TOP[item.kind]
        value = parse_number(text, minimum=0, maximum=top)
        return Problem("scale", {"min": 0, "max": top}) if isinstance(value, Problem) else value
    return Problem("use_buttons")


def join_codes(item: Item, selected: Sequence[str]) -> str:
    """A multiple-choice answer as its codes in definition order, e.g. "chemo;immuno"."""
    chosen = set(selected)
    return MULTI_SEPARATOR.join(code for code in item.options if code in chosen)


def tick(item: Item, selected: frozenset[str], code: str, *, on: bool) -> frozenset[str]:
    """Tick (`on`) or untick one option of a multiple-choice item; idempotent, so a repeated
    press changes nothing. "None" or "not sure" stand alone."""
    if code not in item.options or (code in selected) == on:
        return selected
    return toggle(item, selected, code)


def toggle(item: Item, selected: frozenset[str], code: str) -> frozenset[str]:
    """Flip one option of a multiple-choice item; "none" or "not sure" stand alone."""
    if code not in item.options:
        return selected
    if code in selected:
        return selected - {code}
    if code in item.exclusive:
        return frozenset({code})
    return (selected - item.exclusive) | {code}
