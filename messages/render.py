"""Render the approved texts with StrictUndefined and HTML escaping (Telegram's HTML mode)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES: tuple[str, ...] = ("zh", "en")
TELEGRAM_LIMIT = 4096


class TextTooLong(ValueError):
    """A rendered text would exceed Telegram's 4,096-character limit."""


@cache
def environment() -> Environment:
    # One environment for the process: Jinja2 compiles each template once and caches it. The
    # templates ship with the code and change only with a new release and restart, so Jinja
    # need not stat the file on every render to see whether it changed (`auto_reload`).
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template(name: str, language: str) -> Template:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    return environment().get_template(f"{language}/{name}.j2")


def render(name: str, language: str, **context: Any) -> str:
    """Render one text; fail loudly on a missing variable or an overlong text."""
    text = template(name, language).render(**context).strip()
    if len(text) > TELEGRAM_LIMIT:
        raise TextTooLong(f"{language}/{name} renders to {len(text)} characters")
    return text


def render_bilingual(name: str, **context: Any) -> str:
    """Chinese first, then English: for people whose language the bot cannot know."""
    return "\n\n".join(render(name, language, **context) for language in LANGUAGES)


def template_names(language: str) -> list[str]:
    """Every template name available in `language`, without the suffix."""
    base = TEMPLATES / language
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.j2"))


@cache
def bot_commands() -> dict[str, list[tuple[str, str]]]:
    """The command menu per language, from messages/commands.yaml."""
    data = yaml.safe_load((Path(__file__).parent / "commands.yaml").read_text(encoding="utf-8"))
    return {lang: [(c["command"], c[lang]) for c in data["commands"]] for lang in LANGUAGES}
