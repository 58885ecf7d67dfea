"""Looking at a visit early changes nothing: only what is due goes out."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from followup.settings import load_settings
from scheduler.dispatch import rules_from
from study.visits import PROMPT, decide

ZONE = ZoneInfo("Asia/Shanghai")


def test_a_visit_looked_at_before_its_prompt_is_due_sends_nothing() -> None:
    rules = rules_from(load_settings())
    due = dt.date(2026, 6, 2)
    early = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    decision = decide(stage=PROMPT, due_date=due, zone=ZONE, rules=rules, now=early,
                      participant_status="active", may_message=True)  # fmt: skip
    assert decision.send is None and decision.stage == PROMPT
    assert decision.at == dt.datetime(2026, 6, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


def test_the_same_visit_sends_its_prompt_once_due() -> None:
    rules = rules_from(load_settings())
    due = dt.date(2026, 6, 2)
    at_ten = dt.datetime(2026, 6, 2, 2, 0, tzinfo=dt.UTC)
    decision = decide(stage=PROMPT, due_date=due, zone=ZONE, rules=rules, now=at_ten,
                      participant_status="active", may_message=True)  # fmt: skip
    assert decision.send == PROMPT
