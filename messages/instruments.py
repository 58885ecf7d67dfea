"""The questionnaire versions and their texts, read from messages/questionnaires/.

`checkin-v<N>.yaml` is a definition; `checkin-v<N>.<language>.yaml` holds its words. Every
version stays loadable for as long as any check-in was given under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from messages.render import LANGUAGES
from study.questionnaire import SKIPPED, Item, Kind, Questionnaire, parse_definition
from study.validators import Problem

QUESTIONNAIRES = Path(__file__).parent / "questionnaires"
INSTRUMENT = "checkin"
_DEFINITION = re.compile(r"^(?P<instrument>[a-z_]+)-v(?P<version>[0-9]+)\.yaml$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


def versions(instrument: str = INSTRUMENT) -> list[int]:
    """Every version of the instrument on disk, oldest first (read once per folder: a new
    version ships with a release and a restart)."""
    return list(_versions_in(QUESTIONNAIRES, instrument))


@cache
def _versions_in(folder: Path, instrument: str) -> tuple[int, ...]:
    # Cached: every check-in started asks for the latest version, and listing the folder each
    # time was file-system work on every such update.
    found = []
    for path in folder.glob(f"{instrument}-v*.yaml"):
        match = _DEFINITION.match(path.name)
        if match and match["instrument"] == instrument:
            found.append(int(match["version"]))
    return tuple(sorted(found))


@cache
def definition(version: int, instrument: str = INSTRUMENT) -> Questionnaire:
    questionnaire = parse_definition(_load(QUESTIONNAIRES / f"{instrument}-v{version}.yaml"))
    if questionnaire.version != version or questionnaire.instrument != instrument:
        raise ValueError(f"{instrument}-v{version}.yaml declares another name or version")
    return questionnaire


def latest(instrument: str = INSTRUMENT) -> Questionnaire:
    """The version new check-ins are given under; open ones keep the version they started with."""
    return definition(versions(instrument)[-1], instrument)


@dataclass(frozen=True)
class InstrumentTexts:
    """The words of one questionnaire version in one language (plain text; callers escape)."""

    questionnaire: Questionnaire
    language: str
    data: dict[str, Any]

    def _item(self, item: Item) -> dict[str, Any]:
        found = self.data["items"][item.id]
        assert isinstance(found, dict)
        return found

    def question(self, item: Item, respondent: str | None = None) -> str:
        """The question, worded for a family member when one is answering and that differs."""
        texts = self._item(item)
        if respondent == "proxy" and texts.get("question_proxy"):
            return str(texts["question_proxy"])
        return str(texts["question"])

    def hint(self, item: Item) -> str | None:
        hint = self._item(item).get("hint")
        return str(hint) if hint else None

    def short(self, item: Item) -> str:
        return str(self._item(item)["short"])

    def option(self, item: Item, code: str) -> str:
        """The button label of one coded value."""
        if item.kind is Kind.SCALE_0_4:
            return str(self.data["scales"][item.labels][code])
        if item.kind is Kind.SCALE_0_10:
            return code
        return str(self._item(item)["options"][code])

    def answer(self, item: Item, value: str) -> str:
        """How a stored answer reads back, e.g. in the summary or the export's value_label."""
        if value == SKIPPED:
            return self.control("skipped")
        if item.kind is Kind.MULTI:
            return self.control("separator").join(
                self.option(item, code) for code in value.split(";")
            )
        if item.kind in (Kind.SINGLE, Kind.SCALE_0_4, Kind.SCALE_0_10):
            return self.option(item, value)
        return value

    def control(self, name: str, **params: Any) -> str:
        return str(self.data["controls"][name]).format(**params)

    def problem(self, problem: Problem) -> str:
        return str(self.data["problems"][problem.key]).format(**problem.params)

    def start_words(self) -> list[str]:
        return [str(word) for word in self.data["start_words"]]


@cache
def texts(version: int, language: str, instrument: str = INSTRUMENT) -> InstrumentTexts:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    data = _load(QUESTIONNAIRES / f"{instrument}-v{version}.{language}.yaml")
    return InstrumentTexts(definition(version, instrument), language, data)


CONTROLS = ("back", "skip", "done", "submit", "selected", "edit", "skipped", "separator")
PROBLEMS = ("use_buttons", "choose_one", "number", "scale", "date_format", "date_month_only",
            "date_future", "date_before_enrolment", "text_empty", "text_too_long")  # fmt: skip


def missing_texts(version: int, language: str, instrument: str = INSTRUMENT) -> list[str]:
    """Every text the version needs that its language file lacks (empty when complete)."""
    words = texts(version, language, instrument)
    missing: list[str] = []
    for item in words.questionnaire.items:
        for what, get in (("question", words.question), ("short", words.short)):
            try:
                get(item)
            except (KeyError, TypeError):
                missing.append(f"{item.id}.{what}")
        for code in item.codes():
            try:
                words.option(item, code)
            except (KeyError, TypeError):
                missing.append(f"{item.id}.options.{code}")
    missing += [f"controls.{c}" for c in CONTROLS if c not in words.data.get("controls", {})]
    missing += [f"problems.{p}" for p in PROBLEMS if p not in words.data.get("problems", {})]
    if not words.data.get("start_words"):
        missing.append("start_words")
    return missing


def start_words() -> frozenset[str]:
    """Words that open the check-in, in every language and version, compared case-folded."""
    return frozenset(
        word.casefold()
        for version in versions()
        for language in LANGUAGES
        for word in texts(version, language).start_words()
    )
