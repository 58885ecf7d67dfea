"""The document the ethics committee approves: every text a participant can see, in one place.

It holds every template (each variant in messages/template_samples.yaml), the command menu, and
every item, option and message of each questionnaire version, in the languages asked for.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import UndefinedError

from messages.instruments import CONTROLS, PROBLEMS, definition, texts, versions
from messages.render import LANGUAGES, bot_commands, render, template_names
from study.questionnaire import Item

SAMPLES = Path(__file__).parent / "template_samples.yaml"
FIRST = ("emergency", "checkin_condolence")  # shown first: the texts read at the worst moments
TEMPLATES_NOTE = (
    "Every message template; variables are shown with sample values. Templates starting with "
    "alert_ go to coordinators, not participants."
)


class MissingSample(LookupError):
    """A template needs values that messages/template_samples.yaml does not give."""


@cache
def _samples() -> dict[str, Any]:
    data = yaml.safe_load(SAMPLES.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict)
    return data


def sample_contexts(name: str, language: str) -> list[dict[str, Any]]:
    """The values to render `name` with: one context per variant; [{}] if none are listed."""
    variants = _samples().get(name, [{}])
    contexts = []
    for variant in variants if isinstance(variants, list) else [variants]:
        languages_given = bool(variant) and set(variant) <= set(LANGUAGES)
        contexts.append(dict(variant[language] if languages_given else variant))
    return contexts


def render_samples(name: str, language: str) -> list[str]:
    """Every variant of one template, rendered as Telegram will show it (HTML subset)."""
    rendered = []
    for context in sample_contexts(name, language):
        try:
            rendered.append(render(name, language, **context))
        except UndefinedError as exc:
            raise MissingSample(
                f"template {language}/{name} needs a value ({exc.message}): add sample values "
                f"for {name!r} to messages/template_samples.yaml"
            ) from None
    return rendered


# ---- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    kind: str  # h1, h2, h3, p, message, table
    text: str = ""
    rows: tuple[tuple[str, ...], ...] = ()


def all_template_names(languages: Sequence[str]) -> list[str]:
    names: set[str] = set()
    for language in languages:
        names |= set(template_names(language))
    return sorted(names, key=lambda n: (n not in FIRST, FIRST.index(n) if n in FIRST else 0, n))


def blocks(languages: Sequence[str]) -> list[Block]:
    out = [Block("h1", "PUMCH K8454 follow-up bot: every participant-facing text")]
    out.append(Block("p", f"Languages: {', '.join(languages)}. Questionnaire versions: "
                     + ", ".join(definition(v).name for v in versions()) + "."))  # fmt: skip
    out.append(Block("h2", "Chat messages"))
    out.append(Block("p", TEMPLATES_NOTE))
    for name in all_template_names(languages):
        out.append(Block("h3", name))
        for language in languages:
            for number, text in enumerate(render_samples(name, language), start=1):
                out.append(Block("p", f"{language}, variant {number}"))
                out.append(Block("message", text))
    out.append(Block("h2", "Command menu"))
    commands = bot_commands()
    rows = [("command", *languages)]
    for index, (command, _) in enumerate(commands[languages[0]]):
        rows.append((f"/{command}", *(commands[lang][index][1] for lang in languages)))
    out.append(Block("table", rows=tuple(rows)))
    for version in versions():
        out.extend(_questionnaire_blocks(version, languages))
    return out


def _condition(item: Item) -> str:
    parts = [
        f"{c.item} {'not in' if c.negate else 'in'} {{{', '.join(sorted(c.values))}}}"
        for c in item.when
    ]
    return " and ".join(parts) or "always"


def _questionnaire_blocks(version: int, languages: Sequence[str]) -> Iterable[Block]:
    q = definition(version)
    yield Block("h2", f"Questionnaire {q.name}")
    yield Block("p", "Each item: its id, type and when it is asked, then its texts and the "
                "coded value of every option.")  # fmt: skip
    for number, item in enumerate(q.items, start=1):
        end = f"; answering it ends the check-in ({item.ends})" if item.ends else ""
        yield Block("h3", f"{number}. {item.id} ({item.kind}), asked: {_condition(item)}{end}")
        rows: list[tuple[str, ...]] = [("", *languages)]
        words = [texts(version, lang) for lang in languages]
        rows.append(("question", *(w.question(item) for w in words)))
        if any(w.question(item, "proxy") != w.question(item) for w in words):
            rows.append(
                ("question, family answering", *(w.question(item, "proxy") for w in words))
            )
        if any(w.hint(item) for w in words):
            rows.append(("hint", *(w.hint(item) or "" for w in words)))
        rows.append(("summary label", *(w.short(item) for w in words)))
        for code in item.codes():
            rows.append((f"option {code}", *(w.option(item, code) for w in words)))
        yield Block("table", rows=tuple(rows))
    words = [texts(version, lang) for lang in languages]
    yield Block("h3", f"{q.name}: buttons and re-asks")
    rows = [("", *languages)]
    rows += [(name, *(str(w.data["controls"][name]) for w in words)) for name in CONTROLS]
    rows += [(name, *(str(w.data["problems"][name]) for w in words)) for name in PROBLEMS]
    rows.append(("start words", *(", ".join(w.start_words()) for w in words)))
    yield Block("table", rows=tuple(rows))


_TAG = re.compile(r"<[^>]+>")


def as_markdown(doc: Sequence[Block]) -> str:
    lines: list[str] = []
    for block in doc:
        if block.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(block.kind[1]) + " " + block.text, ""]
        elif block.kind == "p":
            lines += [block.text, ""]
        elif block.kind == "message":
            plain = html.unescape(_TAG.sub("", block.text))
            lines += ["> " + line if line else ">" for line in plain.splitlines()] + [""]
        else:
            cells = [[c.replace("|", "\\|").replace("\n", " ") for c in r] for r in block.rows]
            lines.append("| " + " | ".join(cells[0]) + " |")
            lines.append("|" + "---|" * len(cells[0]))
            lines += ["| " + " | ".join(r) + " |" for r in cells[1:]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def as_html(doc: Sequence[Block]) -> str:
    parts = ['<!doctype html><html><head><meta charset="utf-8"><title>Participant texts</title>',
             "<style>.m{white-space:pre-wrap;border-left:3px solid #888;padding:4px 10px;"
             "margin:4px 0 12px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
             "table{border-collapse:collapse}</style></head><body>"]  # fmt: skip
    for block in doc:
        if block.kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{block.kind}>{html.escape(block.text)}</{block.kind}>")
        elif block.kind == "message":  # Telegram's HTML subset is valid HTML: shown as sent
            parts.append(f'<div class="m">{block.text}</div>')
        else:
            head, *body = block.rows
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head))
            for row in body:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row))
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def document(languages: Sequence[str] = LANGUAGES, fmt: str = "md") -> str:
    doc = blocks(languages)
    return as_html(doc) if fmt == "html" else as_markdown(doc)
