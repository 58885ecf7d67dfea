"""Export formats for analysis: REDCap (flat longitudinal CSV and its data dictionary) and FHIR.

Both take the answer rows of `models.checkins.export_rows` (study ids, never Telegram ids) and
the questionnaire definitions as data, so a new questionnaire version exports without code.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any, TextIO

from fhir.resources.R4B.bundle import Bundle

from messages.instruments import definition, texts, versions
from models.checkins import ExportRow
from study.questionnaire import MULTI_SEPARATOR, Item, Kind, Questionnaire

LABELS = "en"
FORM = "checkin"
SYSTEM = "urn:pumch-k8454"
DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note",
    "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max",
    "Identifier?", "Branching Logic (Show field only if...)", "Required Field?",
    "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation",
)  # fmt: skip


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV-injection advice).

    Coordinators open exports in Excel or WPS before importing them; a participant's free text
    such as "=HYPERLINK(...)" must stay text. Numbers, negative ones included, pass unchanged.
    """
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_START)
        and not _NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def event_name(visit: int) -> str:
    """REDCap's unique event name for the event labelled "Visit <n>" in arm 1."""
    return f"visit_{visit}_arm_1"


def _items() -> list[tuple[Questionnaire, Item]]:
    """Every item of every version, first appearance wins (ids keep their meaning)."""
    seen: dict[str, tuple[Questionnaire, Item]] = {}
    for version in versions():
        q = definition(version)
        for item in q.items:
            seen.setdefault(item.id, (q, item))
    return list(seen.values())


def redcap_columns() -> list[str]:
    columns = ["record_id", "redcap_event_name", "instrument_version"]
    for _, item in _items():
        if item.kind is Kind.MULTI:
            columns += [f"{item.id}___{code}" for code in item.options]
        else:
            columns.append(item.id)
    return [*columns, f"{FORM}_complete"]


def _branching(item: Item) -> str:
    parts = []
    for condition in item.when:
        op, join = ("<>", " and ") if condition.negate else ("=", " or ")
        tests = [f"[{condition.item}] {op} '{v}'" for v in sorted(condition.values)]
        parts.append("(" + join.join(tests) + ")" if len(tests) > 1 else tests[0])
    return " and ".join(parts)


def _field(q: Questionnaire, item: Item) -> dict[str, str]:
    words = texts(q.version, LABELS, q.instrument)
    row = {c: "" for c in DICTIONARY_COLUMNS}
    row |= {"Variable / Field Name": item.id, "Form Name": FORM,
            "Field Label": words.question(item), "Branching Logic (Show field only if...)":
            _branching(item)}  # fmt: skip
    if item.codes():
        kind = "checkbox" if item.kind is Kind.MULTI else "radio"
        choices = " | ".join(f"{c}, {words.option(item, c)}" for c in item.codes())
        row |= {"Field Type": kind, "Choices, Calculations, OR Slider Labels": choices}
    elif item.kind is Kind.NUMBER:
        row |= {
            "Field Type": "text",
            "Text Validation Type OR Show Slider Number": "integer",
            "Text Validation Min": str(item.minimum),
            "Text Validation Max": str(item.maximum),
        }
    elif item.kind is Kind.DATE and not item.month_year:
        row |= {"Field Type": "text", "Text Validation Type OR Show Slider Number": "date_ymd"}
    else:  # free text, or a date that may be a month alone (YYYY-MM)
        row |= {"Field Type": "notes" if item.max_length > 200 else "text"}
    return row  # fmt: skip


def write_redcap_dictionary(out: TextIO) -> None:
    """A REDCap data dictionary for the check-in form, to build the project from."""
    writer = csv.DictWriter(out, fieldnames=DICTIONARY_COLUMNS)
    writer.writeheader()
    first = {c: "" for c in DICTIONARY_COLUMNS}
    first |= {"Variable / Field Name": "record_id", "Form Name": FORM, "Field Type": "text",
              "Field Label": "Study id"}  # fmt: skip
    writer.writerow(first)
    writer.writerow({c: "" for c in DICTIONARY_COLUMNS} | {
        "Variable / Field Name": "instrument_version", "Form Name": FORM, "Field Type": "text",
        "Field Label": "Questionnaire version"})  # fmt: skip
    for q, item in _items():
        writer.writerow(_field(q, item))


def _checkins(rows: Iterable[ExportRow]) -> Iterator[list[ExportRow]]:
    for _, group in groupby(rows, key=lambda r: (r.study_id, r.visit)):
        yield list(group)


def write_redcap(rows: Iterable[ExportRow], out: TextIO) -> int:
    """One row per participant and visit: coded values, checkboxes as 0/1; returns rows written."""
    columns = redcap_columns()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    multi = {item.id: item for _, item in _items() if item.kind is Kind.MULTI}
    count = 0
    for answers in _checkins(rows):
        first = answers[0]
        record: dict[str, Any] = {c: "" for c in columns}
        record |= {
            "record_id": first.study_id,
            "redcap_event_name": event_name(first.visit),
            "instrument_version": f"{first.instrument}-v{first.version}",
            f"{FORM}_complete": "2" if first.checkin_status != "in_progress" else "1",
        }
        for row in answers:  # fmt: skip
            if row.item in multi:
                chosen = set(row.value.split(MULTI_SEPARATOR)) if row.value else set()
                for code in multi[row.item].options:
                    record[f"{row.item}___{code}"] = "1" if code in chosen else "0"
            elif row.item in record:
                record[row.item] = row.value
        writer.writerow({k: spreadsheet_safe(v) for k, v in record.items()})
        count += 1
    return count


def questionnaire_url(q: Questionnaire) -> str:
    return f"{SYSTEM}:Questionnaire:{q.name}"


def _fhir_type(item: Item) -> str:
    if item.codes():
        return "choice"
    return {Kind.NUMBER: "integer", Kind.DATE: "date"}.get(item.kind, "string")


def fhir_questionnaire(q: Questionnaire) -> dict[str, Any]:
    words = texts(q.version, LABELS, q.instrument)
    items = []
    for item in q.items:
        entry: dict[str, Any] = {"linkId": item.id, "text": words.question(item),
                                 "type": _fhir_type(item)}  # fmt: skip
        if item.codes():
            entry["answerOption"] = [
                {"valueCoding": {"system": f"{questionnaire_url(q)}#{item.id}", "code": c,
                                 "display": words.option(item, c)}}
                for c in item.codes()
            ]  # fmt: skip
            entry["repeats"] = item.kind is Kind.MULTI
        items.append(entry)
    return {"resourceType": "Questionnaire", "id": q.name, "url": questionnaire_url(q),
            "version": str(q.version), "name": q.name.replace("-", "_"), "status": "active",
            "item": items}  # fmt: skip


def _answers(q: Questionnaire, row: ExportRow) -> list[dict[str, Any]]:
    item = q.by_id.get(row.item)
    if item is None or row.value == "":
        return []
    if item.codes():
        words = texts(q.version, LABELS, q.instrument)
        codes = row.value.split(MULTI_SEPARATOR) if item.kind is Kind.MULTI else [row.value]
        return [{"valueCoding": {"system": f"{questionnaire_url(q)}#{item.id}", "code": c,
                                 "display": words.option(item, c)}} for c in codes]  # fmt: skip
    if item.kind is Kind.NUMBER:
        return [{"valueInteger": int(row.value)}]
    if item.kind is Kind.DATE:
        return [{"valueDate": row.value}]
    return [{"valueString": row.value}]


def fhir_id(value: str) -> str:
    """A FHIR id: letters, digits, '-' and '.', at most 64."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", value)[:64]


def fhir_response(answers: list[ExportRow]) -> dict[str, Any]:
    first = answers[0]
    q = definition(first.version, first.instrument)
    status = {"completed": "completed", "in_progress": "in-progress"}.get(
        first.checkin_status, "stopped")  # fmt: skip
    items = [{"linkId": r.item, "answer": a} for r in answers if (a := _answers(q, r))]
    name = fhir_id(f"{first.study_id}-visit-{first.visit}")
    return {
        "resourceType": "QuestionnaireResponse", "id": name,
        "identifier": {"system": f"{SYSTEM}:checkin", "value": f"{first.study_id}:{first.visit}"},
        "questionnaire": questionnaire_url(q), "status": status,
        "subject": {"identifier": {"system": f"{SYSTEM}:study-id", "value": first.study_id}},
        "authored": max(r.answered_at for r in answers).isoformat(), "item": items,
    }  # fmt: skip


def fhir_bundle(rows: Iterable[ExportRow]) -> Bundle:
    """A collection Bundle: each questionnaire version used, then one response per check-in."""
    responses = [fhir_response(group) for group in _checkins(rows)]
    used = sorted({(r.split(":")[-1]) for r in (x["questionnaire"] for x in responses)})
    names = {q.name: q for q in (definition(v) for v in versions())}
    resources = [fhir_questionnaire(names[n]) for n in used if n in names] + responses
    entries = [{"fullUrl": f"{SYSTEM}:{r['resourceType']}:{r['id']}", "resource": r}
               for r in resources]  # fmt: skip
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection",
                                  "entry": entries})  # fmt: skip
