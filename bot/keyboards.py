"""Inline keyboards and their typed callback data; the server checks every press against state.

Check-in buttons carry `ci:<check-in id>:<step>:<code>`. The step is the number of the question
as shown, so a button from an earlier question, an earlier visit or a forged one never matches.
Codes: an option's code; `+<code>` to tick and `-<code>` to untick a multiple choice; and `~b`
back, `~s` skip, `~d` done, `~ok` submit, `~e<n>` change summary line n.

A multiple-choice button says what the participant saw (tick this, untick that), not "flip it":
a press on an older copy of the same question, or one replayed after a crash, then does what
the participant meant instead of undoing a tick they can see elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from messages.instruments import InstrumentTexts
from study.questionnaire import Item, Kind

Markup = dict[str, Any]

BACK, SKIP, DONE, SUBMIT, TICK, UNTICK, EDIT = "~b", "~s", "~d", "~ok", "+", "-", "~e"
_CHECKIN = re.compile(r"^ci:([0-9]{1,10}):([0-9]{1,6}):([A-Za-z0-9_~+-]{1,24})$")
_OPEN = re.compile(r"^checkin:open:([0-9]{1,10})$")
OPEN_PATTERN = r"^checkin:"
CHECKIN_PATTERN = r"^ci:"


@dataclass(frozen=True)
class CheckinButton:
    checkin_id: int
    step: int
    code: str

    def pack(self) -> str:
        return f"ci:{self.checkin_id}:{self.step}:{self.code}"

    @classmethod
    def parse(cls, data: str | None) -> CheckinButton | None:
        found = _CHECKIN.match(data or "")
        if found is None:
            return None
        return cls(int(found.group(1)), int(found.group(2)), found.group(3))


def parse_open(data: str | None) -> int | None:
    """The visit id of the schedule's `checkin:open:<visit id>` button, or None."""
    found = _OPEN.match(data or "")
    return int(found.group(1)) if found else None


def _button(label: str, checkin_id: int, step: int, code: str) -> dict[str, str]:
    return {"text": label, "callback_data": CheckinButton(checkin_id, step, code).pack()}


def _rows(buttons: Sequence[dict[str, str]], width: int) -> list[list[dict[str, str]]]:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def question_keyboard(
    item: Item,
    words: InstrumentTexts,
    *,
    checkin_id: int,
    step: int,
    selected: frozenset[str] = frozenset(),
    can_go_back: bool,
) -> Markup | None:
    """One button per answer (ticked if chosen), then Back, and Skip or Done where they apply."""
    mark = words.control("selected")
    options = []
    for code in item.codes():
        label = words.option(item, code)
        label = f"{mark}{label}" if code in selected else label
        tick = UNTICK if code in selected else TICK
        data = f"{tick}{code}" if item.kind is Kind.MULTI else code
        options.append(_button(label, checkin_id, step, data))
    rows = _rows(options, 6 if item.kind is Kind.SCALE_0_10 else 1)
    controls = []
    if can_go_back:
        controls.append(_button(words.control("back"), checkin_id, step, BACK))
    if item.optional:
        controls.append(_button(words.control("skip"), checkin_id, step, SKIP))
    if item.kind is Kind.MULTI:
        controls.append(_button(words.control("done"), checkin_id, step, DONE))
    if controls:
        rows.append(controls)
    return {"inline_keyboard": rows} if rows else None


def summary_keyboard(count: int, words: InstrumentTexts, *, checkin_id: int, step: int) -> Markup:
    """A numbered button per summary line to change it, then Back and Submit."""
    edits = [
        _button(words.control("edit", number=n), checkin_id, step, f"{EDIT}{n}")
        for n in range(1, count + 1)
    ]
    rows = _rows(edits, 4)
    rows.append(
        [
            _button(words.control("back"), checkin_id, step, BACK),
            _button(words.control("submit"), checkin_id, step, SUBMIT),
        ]
    )
    return {"inline_keyboard": rows}
