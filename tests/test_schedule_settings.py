"""The schedule settings: defaults, parsing from the environment, and errors that name them."""

from __future__ import annotations

import datetime as dt

import pytest

from followup.settings import SettingsError, load_settings
from scheduler.dispatch import rules_from


def test_schedule_defaults_match_the_protocol() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.visit_interval_months, settings.send_hour) == (3, 10)
    assert settings.reminder_days == (3, 7) and settings.window_days == 14
    assert settings.quiet_window() == (dt.time(21), dt.time(8))
    assert settings.dispatch_interval_seconds == 60 and settings.send_rate == 29
    assert rules_from(settings).plan_key() == "m3:w14:r3,7:h10:q2100-0800:e2028-12-31"


def test_schedule_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_REMINDER_DAYS", "2, 5,9")
    monkeypatch.setenv("FOLLOWUP_QUIET_HOURS", "22:30-07:00")
    monkeypatch.setenv("FOLLOWUP_SEND_HOUR", "9")
    settings = load_settings(_env_file=None)
    assert settings.reminder_days == (2, 5, 9) and settings.send_hour == 9
    assert settings.quiet_window() == (dt.time(22, 30), dt.time(7))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"reminder_days": "7,3"}, "FOLLOWUP_REMINDER_DAYS"),
        ({"reminder_days": "3,x"}, "FOLLOWUP_REMINDER_DAYS"),
        ({"reminder_days": "3,14"}, "FOLLOWUP_REMINDER_DAYS"),
        ({"quiet_hours": "9pm-8am"}, "FOLLOWUP_QUIET_HOURS"),
        ({"send_hour": 22}, "FOLLOWUP_SEND_HOUR"),
        ({"send_hour": 24}, "FOLLOWUP_SEND_HOUR"),
        ({"visit_interval_months": 0}, "FOLLOWUP_VISIT_INTERVAL_MONTHS"),
        ({"window_days": 0}, "FOLLOWUP_WINDOW_DAYS"),
        ({"send_rate": 31}, "FOLLOWUP_SEND_RATE"),
        ({"dispatch_interval_seconds": 0}, "FOLLOWUP_DISPATCH_INTERVAL_SECONDS"),
    ],
)
def test_a_bad_schedule_setting_fails_fast_and_names_itself(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(_env_file=None, **overrides)
