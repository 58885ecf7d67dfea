"""Every template renders in both languages as Telegram HTML, under the length limit, and the
ethics document holds every one of them and every questionnaire text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from followup.cli import app
from messages.ethics import document, render_samples
from messages.instruments import definition, texts, versions
from messages.render import (
    LANGUAGES,
    TELEGRAM_LIMIT,
    Stencil,
    TextTooLong,
    render,
    renderer,
    stencil_pieces,
    template_names,
)
from sandbox.html_check import html_error
from sandbox.state import plain_text
from study.questionnaire import SKIPPED
from study.validators import Problem

ALL_TEMPLATES = sorted(set().union(*(template_names(lang) for lang in LANGUAGES)))


def test_both_languages_have_the_same_templates() -> None:
    assert template_names("zh") == template_names("en")


@pytest.mark.parametrize("name", ALL_TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_template_renders_as_telegram_html_within_the_limit(name: str, language: str) -> None:
    # A template that needs values must have them in messages/template_samples.yaml; the error
    # raised (MissingSample) says which template and which value.
    for text in render_samples(name, language):
        assert text.strip(), f"{language}/{name} renders empty"
        assert html_error(text) is None, f"{language}/{name}: {html_error(text)}"
        assert len(text) < TELEGRAM_LIMIT


STENCILS = [(name, language) for name in ALL_TEMPLATES for language in LANGUAGES
            if isinstance(renderer(name, language), Stencil)]  # fmt: skip
VALUES = st.one_of(st.text(max_size=40), st.integers(), st.sampled_from(["<b>", "a&b", "'\"", ""]))


def test_the_missed_visit_notice_is_a_stencil() -> None:
    # The send-hour pass renders one per missed visit (docs/benchmarks.md, figure 3).
    assert {("alert_visit_missed", language) for language in LANGUAGES} <= set(STENCILS)


@pytest.mark.parametrize(("name", "language"), STENCILS)
@given(data=st.data())
def test_a_stencil_gives_exactly_the_text_jinja_gives(name: str, language: str,
                                                      data: st.DataObject) -> None:  # fmt: skip
    stencil = renderer(name, language)
    assert isinstance(stencil, Stencil)
    values = {field: data.draw(VALUES, label=field) for field in sorted(stencil.fields)}
    assert stencil(**values) == render(name, language, **values)


@pytest.mark.parametrize(
    "source",
    [
        "Visit {{ number|string }}",
        "{% if number %}due{% endif %}",
        "{% for n in numbers %}{{ n }}{% endfor %}",
        "{{ visit.number }}",
        "{{ number + 1 }}",
        "{{ 'due' }} {{ number }}",
        "{% set x = 1 %}{{ x }}",
    ],
)
def test_a_template_that_does_more_than_print_its_values_is_no_stencil(source: str) -> None:
    assert stencil_pieces(source) is None


def test_a_template_that_only_prints_its_values_is_taken_apart_in_order() -> None:
    pieces = stencil_pieces("Id {{ study_id }}: visit {{ number }}.\n")
    assert [p if isinstance(p, str) else p.name for p in pieces or []] == [
        "Id ", "study_id", ": visit ", "number", "."
    ]  # fmt: skip


def test_a_stencil_refuses_a_text_over_telegrams_limit_as_render_does() -> None:
    values = {"study_id": "x" * TELEGRAM_LIMIT, "number": 1, "due": "2026-01-01"}
    with pytest.raises(TextTooLong):
        render("alert_visit_missed", "en", **values)
    with pytest.raises(TextTooLong):
        renderer("alert_visit_missed", "en")(**values)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("version", versions())
def test_every_question_renders_with_every_problem(version: int, language: str) -> None:
    words = texts(version, language)
    problems = [Problem(key, {"min": 0, "max": 500, "date": "2026-01-15"})
                for key in words.data["problems"]]  # fmt: skip
    for item in words.questionnaire.items:
        for respondent in ("self", "proxy"):
            for problem in [None, *problems]:
                text = render("checkin_question", language,
                              question=words.question(item, respondent), hint=words.hint(item),
                              problem=words.problem(problem) if problem else None)  # fmt: skip
                assert html_error(text) is None and len(text) < TELEGRAM_LIMIT
        for code in item.codes():
            assert 0 < len(words.option(item, code)) <= 60


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_longest_summary_fits_in_one_message(language: str) -> None:
    """Every item answered, free text at its cap and full of characters that need escaping."""
    for version in versions():
        words = texts(version, language)
        lines = []
        for number, item in enumerate(definition(version).items, start=1):
            value = words.answer(item, item.codes()[-1]) if item.codes() else "&<>" * 40
            lines.append({"number": number, "label": words.short(item), "answer": value})
        text = render("checkin_summary", language, lines=lines,
                      problem=words.problem(Problem("use_buttons")))  # fmt: skip
        assert html_error(text) is None
        assert "&lt;" in text and len(text) < TELEGRAM_LIMIT
        assert words.answer(definition(version).items[-1], SKIPPED) == words.control("skipped")


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_ethics_document_contains_every_template_and_questionnaire_text(fmt: str) -> None:
    doc = document(LANGUAGES, fmt)
    for name in ALL_TEMPLATES:
        assert f">{name}<" in doc if fmt == "html" else f"### {name}\n" in doc
        for language in LANGUAGES:
            for text in render_samples(name, language):
                shown = text if fmt == "html" else plain_text(text).splitlines()[0]
                assert shown in doc, f"{language}/{name} missing"
    for version in versions():
        q = definition(version)
        assert q.name in doc
        for language in LANGUAGES:
            words = texts(version, language)
            for item in q.items:
                assert words.question(item) in doc or fmt == "html"
                for code in item.codes():
                    assert words.option(item, code) in doc


def test_texts_command_writes_one_language(tmp_path: object) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["texts", "--language", "en", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "Who is answering today?" in result.output
    assert "今天是谁在回答" not in result.output
    assert "call 120" in result.output  # the emergency text
    assert "sorry for your loss" in result.output  # the condolence text
    bad = runner.invoke(app, ["texts", "--language", "fr"])
    assert bad.exit_code == 2
