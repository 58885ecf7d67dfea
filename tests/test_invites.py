"""Invite tokens and the throttle, as pure functions."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from study.invites import (
    InviteState,
    deep_link,
    hash_token,
    invite_state,
    is_throttled,
    looks_like_token,
    new_token,
)

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_tokens_are_valid_start_parameters_with_at_least_128_bits() -> None:
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for token in tokens:
        assert looks_like_token(token)
        assert len(token) <= 64
        # 6 bits per url-safe base64 character
        assert len(token) * 6 >= 128


def test_only_the_hash_is_derived_and_it_is_stable() -> None:
    token = new_token()
    assert hash_token(token) == hash_token(token)
    assert token not in hash_token(token)
    assert len(hash_token(token)) == 64


def test_invite_states() -> None:
    later = NOW + dt.timedelta(days=30)
    assert (
        invite_state(expires_at=later, used_at=None, revoked_at=None, now=NOW) is InviteState.VALID
    )
    assert (
        invite_state(expires_at=later, used_at=NOW, revoked_at=None, now=NOW) is InviteState.USED
    )
    assert (
        invite_state(expires_at=later, used_at=None, revoked_at=NOW, now=NOW)
        is InviteState.REVOKED
    )
    assert (
        invite_state(expires_at=NOW, used_at=None, revoked_at=None, now=NOW) is InviteState.EXPIRED
    )


def test_deep_link_or_bare_token() -> None:
    assert deep_link("pumch_bot", "abc") == "https://t.me/pumch_bot?start=abc"
    assert deep_link("@pumch_bot", "abc") == "https://t.me/pumch_bot?start=abc"
    assert deep_link(None, "abc") == "abc"


def test_throttle_counts_only_failures_inside_the_window() -> None:
    window = dt.timedelta(minutes=15)
    recent = [NOW - dt.timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert not is_throttled(recent, now=NOW, limit=5, window=window)
    assert is_throttled([*recent, NOW], now=NOW, limit=5, window=window)
    old = [NOW - dt.timedelta(minutes=16 + m) for m in range(10)]
    assert not is_throttled(old + recent, now=NOW, limit=5, window=window)


@given(st.text(max_size=100))
def test_only_telegram_start_parameter_characters_pass(value: str) -> None:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    expected = 0 < len(value) <= 64 and set(value) <= allowed
    assert looks_like_token(value) is expected


def test_a_trailing_newline_is_not_a_token() -> None:
    assert not looks_like_token("abc\n")
