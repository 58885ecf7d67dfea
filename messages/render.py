"""Render the approved texts with StrictUndefined and HTML escaping (Telegram's HTML mode)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, nodes
from markupsafe import escape

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


class Stencil:
    """A template that only prints its values as they are, rendered by joining its pieces.

    Jinja renders through a fresh context each time, about 13 µs a short text. The send-hour
    pass renders one missed-visit notice per visit (1,096 at 100,000 participants; figure 3 in
    docs/benchmarks.md), so a template whose every value is printed bare (`{{ study_id }}`: no
    filter, test, condition or loop) is taken apart once into its literal text and its values'
    names, and each text is the pieces joined with the values escaped as Jinja escapes them
    (3 µs). `renderer` checks the result against Jinja's own before it hands a stencil out.
    """

    def __init__(self, name: str, language: str, pieces: list[str | nodes.Name]) -> None:
        self.name, self.language, self._pieces = name, language, pieces

    @property
    def fields(self) -> set[str]:
        return {piece.name for piece in self._pieces if isinstance(piece, nodes.Name)}

    def __call__(self, **context: Any) -> str:
        text = "".join(
            piece if isinstance(piece, str) else str(escape(context[piece.name]))
            for piece in self._pieces
        ).strip()
        if len(text) > TELEGRAM_LIMIT:
            raise TextTooLong(f"{self.language}/{self.name} renders to {len(text)} characters")
        return text


def stencil_pieces(source: str) -> list[str | nodes.Name] | None:
    """A template's literal text and bare values in order, or None if it does anything else."""
    pieces: list[str | nodes.Name] = []
    for statement in environment().parse(source).body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                pieces.append(node.data)
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                pieces.append(node)
            else:
                return None
    return pieces


@cache
def renderer(name: str, language: str) -> Callable[..., str]:
    """`render` of one template, as a stencil when the template allows it (for many texts)."""
    plain = partial(render, name, language)
    loader = environment().loader
    assert loader is not None
    source, _, _ = loader.get_source(environment(), f"{language}/{name}.j2")
    pieces = stencil_pieces(source)
    if pieces is None:
        return plain
    stencil = Stencil(name, language, pieces)
    # Jinja's own text for values that need escaping, or no stencil.
    sample = {field: f"<{field}> & '{field}'" for field in stencil.fields}
    return stencil if stencil(**sample) == plain(**sample) else plain


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
