"""Alert notices in plain words for the coordinators: reasons, state and the three buttons.

Callback data is `al:v1:<a|r|s>:<alert id>` (acknowledge, resolve, show answers); the handler
checks the alert's state and the presser against the allow-list, never trusting the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

from messages.instruments import definition, texts
from messages.render import render

ACK, RESOLVE, ANSWERS = "a", "r", "s"
PATTERN = r"^al:v1:"


class AlertLike(Protocol):
    id: int | None
    tier: str
    status: str
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    resolution_note: str | None


def _item_words(reason: Mapping[str, Any], language: str) -> tuple[str, str, str]:
    """(item label, value label, previous label) in the coordinator's language."""
    item_id, value, previous = reason.get("item"), reason.get("value"), reason.get("previous")
    version = str(reason.get("version") or "")
    instrument, _, number = version.rpartition("-v")
    if not item_id or not number.isdigit():
        return str(item_id or ""), str(value or ""), str(previous or "")
    words = texts(int(number), language, instrument)
    item = definition(int(number), instrument).by_id.get(str(item_id))
    if item is None:
        return str(item_id), str(value or ""), str(previous or "")

    def label(code: Any) -> str:
        return words.answer(item, str(code)) if code is not None else ""

    return words.short(item), label(value), label(previous)


def reason_text(reason: Mapping[str, Any], language: str) -> str:
    label, value, previous = _item_words(reason, language)
    if reason.get("rule") == "emergency_phrase":
        value = str(reason.get("value") or "")
    return render("alert_reason", language, rule=reason.get("rule"), label=label, value=value,
                  previous=previous)  # fmt: skip


def _stamp(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


def notice_text(
    language: str, *, alert: AlertLike, study_id: str, visit: int | None,
    reasons: list[Mapping[str, Any]], repeat: bool = False, detail: str | None = None,
) -> str:  # fmt: skip
    """The coordinator's message for one alert, showing its current state."""
    worded = [reason_text(r, language) for r in reasons] or [detail or ""]
    if alert.status == "resolved":
        by, at = alert.resolved_by, alert.resolved_at
    else:
        by, at = alert.acknowledged_by, alert.acknowledged_at
    return render(
        "alert_notice", language, repeat=repeat, tier=alert.tier, alert_id=alert.id,
        study_id=study_id, visit=visit, reasons=[w for w in worded if w], state=alert.status,
        by=by or "", at=_stamp(at), note=alert.resolution_note,
    )  # fmt: skip


_CHOICES = {"open": ("ack", "resolve", "answers"), "acknowledged": ("resolve", "answers")}
_CODES = {"ack": ACK, "resolve": RESOLVE, "answers": ANSWERS}


def alert_markup(alert: AlertLike, language: str) -> dict[str, Any]:
    """Acknowledge and Resolve while they still apply; Show answers always."""
    return _markup(alert.id, alert.status, language)


def open_alert_markup(alert_id: int, language: str) -> dict[str, Any]:
    """`alert_markup` of a new (open) alert, from its id alone."""
    return _markup(alert_id, "open", language)


def _markup(alert_id: int | None, status: str, language: str) -> dict[str, Any]:
    row = [
        {"text": _button_text(language, c), "callback_data": f"al:v1:{_CODES[c]}:{alert_id}"}
        for c in _CHOICES.get(status, ("answers",))
    ]
    return {"inline_keyboard": [row]}


@cache
def _button_text(language: str, choice: str) -> str:
    # Templates are files loaded once per process (messages.render), so a label never changes.
    return render("alert_button", language, choice=choice)
