"""The demo's last step: the coordinator's alerts, one acknowledged, and an export on disk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from bot.alerting import queue_due_notices
from bot.deps import Deps
from bot.replies import sender
from followup.exports import write_redcap, write_redcap_dictionary
from models.checkins import export_rows
from models.coordinator_views import alert_rows
from models.db import transaction
from sandbox import SandboxUser

if TYPE_CHECKING:
    from bot.deps import BotApp
    from followup.demo import Narrator

WHO = "DEMO-007"


async def coordinator_view(say: Narrator, deps: Deps, app: BotApp, workdir: Path) -> None:
    """DEMO-007 writes an emergency phrase; the coordinator is alerted, acknowledges, exports."""
    boss = say.sandbox.add_user(first_name="Coordinator", language_code="en")
    deps.settings = deps.settings.model_copy(update={
        "coordinator_chat_id": boss.id, "coordinator_ids": frozenset({boss.id}),
        "coordinator_language": "en"})  # fmt: skip
    user = await say.enrol_and_link(deps, WHO, enrolled_on=dt.date(2026, 1, 15))
    say.step(f"{WHO} writes 我胸口痛，喘不上气 (chest pain, can't breathe) outside any check-in")
    say.says(WHO, "我胸口痛，喘不上气")
    await say.sandbox.send_text(user, "我胸口痛，喘不上气")
    await say.shows(WHO, user)
    say.step("The coordinator chat gets every alert still waiting for a notice, with buttons")
    await sender(app).flush(await deps.db(lambda s: queue_due_notices(s, deps)))
    notices = [await say.shows("coordinator", boss) for _ in range(_count(say, boss))]
    emergency = next(m for m in notices if WHO in m.text)
    say.step("The coordinator presses Acknowledge: the alert message shows who and when")
    await say.sandbox.press(boss, emergency, emergency.button("Acknowledge"))
    await say.sandbox.wait_until(lambda: "acknowledged by" in emergency.text)
    say.console.print(emergency.text)
    _show_alerts(say, deps)
    _export(say, deps, workdir)


def _count(say: Narrator, boss: SandboxUser) -> int:
    return len(say.sandbox.messages_to(boss.id)) - say.seen.get(boss.id, 0)


def _show_alerts(say: Narrator, deps: Deps) -> None:
    say.step("The coordinator's view: followup alerts")
    with transaction(deps.engine) as session:
        rows = alert_rows(session, only_open=False)
    table = Table("id", "tier", "status", "kind", "study id")
    for r in rows:
        table.add_row(str(r.id), r.tier, r.status, r.kind, r.study_id)
    say.console.print(table)


def _export(say: Narrator, deps: Deps, workdir: Path) -> None:
    say.step("followup export --format redcap --dictionary dictionary.csv --out redcap.csv")
    data, dictionary = workdir / "redcap.csv", workdir / "dictionary.csv"
    with transaction(deps.engine) as session:
        rows = export_rows(session)
    with data.open("w", encoding="utf-8", newline="") as handle:
        count = write_redcap(rows, handle)
    with dictionary.open("w", encoding="utf-8", newline="") as handle:
        write_redcap_dictionary(handle)
    say.console.print(f"{count} check-ins written to {data}; the data dictionary to {dictionary}")
