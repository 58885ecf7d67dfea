"""Settings come from the environment, are validated at start, and errors name the setting."""

from __future__ import annotations

import datetime as dt

import pytest

from followup.settings import SettingsError, load_settings

VALID_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


def test_defaults_match_the_operators_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "TELEGRAM_TOKEN", "TIMEZONE", "STUDY_END", "COORDINATOR_IDS"):
        monkeypatch.delenv(f"FOLLOWUP_{name}", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite:///followup.db"
    assert settings.telegram_token is None
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.study_end == dt.date(2028, 12, 31)
    assert settings.coordinator_ids == frozenset()
    assert settings.invite_ttl_days == 30


def test_environment_values_are_read_and_ids_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_COORDINATOR_IDS", "11, 22,33")
    monkeypatch.setenv("FOLLOWUP_COORDINATOR_CHAT_ID", "-1001234")
    monkeypatch.setenv("FOLLOWUP_STUDY_END", "2028-06-30")
    settings = load_settings()
    assert settings.coordinator_ids == frozenset({11, 22, 33})
    assert settings.coordinator_chat_id == -1001234
    assert settings.study_end == dt.date(2028, 6, 30)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FOLLOWUP_TIMEZONE", "Mars/Olympus"),
        ("FOLLOWUP_COORDINATOR_IDS", "12,abc"),
        ("FOLLOWUP_STUDY_END", "next year"),
        ("FOLLOWUP_TELEGRAM_API_URL", "ftp://example"),
        ("FOLLOWUP_INVITE_TTL_DAYS", "0"),
    ],
)
def test_a_bad_setting_fails_fast_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_the_token_is_required_and_must_look_like_a_bot_token() -> None:
    with pytest.raises(SettingsError, match="FOLLOWUP_TELEGRAM_TOKEN is not set"):
        load_settings(telegram_token=None).require_token()
    with pytest.raises(SettingsError, match="malformed"):
        load_settings(telegram_token="hello").require_token()
    assert load_settings(telegram_token=VALID_TOKEN).require_token() == VALID_TOKEN


def test_the_token_never_shows_in_the_settings_repr() -> None:
    settings = load_settings(telegram_token=VALID_TOKEN)
    assert VALID_TOKEN not in repr(settings)
    assert VALID_TOKEN not in str(settings.model_dump())
