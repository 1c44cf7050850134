"""The case page's own logic: every event of a case becomes a sentence in Azerbaijani and
English (never a raw class name), members' statuses and their dates come from the events, the
decision's explanation lines up with its criteria, and "as of a date" means the end of that
day in Baku."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from api.console import i18n
from api.console.pages import case

SCHEMAS = Path(case.__file__).parents[3] / "schemas"
NOT_OF_A_CASE = {"QuestionnairePublished", "ConvoyScheduled"}
"""Events of a questionnaire or a convoy: never on one household's timeline."""
CASE_EVENTS = sorted(
    path.stem
    for folder in ("registry", "surveys", "eligibility", "relocation", "reintegration")
    for path in (SCHEMAS / folder).glob("*.avsc")
    if not path.stem.startswith("RuleSet") and path.stem not in NOT_OF_A_CASE
)
HEAD = "11111111-1111-5111-8111-111111111111"


def event(kind: str, **data: object) -> dict[str, object]:
    return {
        "at": "2026-11-30T23:38:00+00:00",
        "event": kind,
        "by": "op-aysel",
        "role": "operator",
        "reason": None,
        "aggregate_id": HEAD,
        "data": data,
    }


def test_every_event_a_case_can_hold_has_a_sentence_of_its_own() -> None:
    assert len(CASE_EVENTS) > 35
    assert [kind for kind in CASE_EVENTS if kind not in case.SENTENCES] == []


@pytest.mark.parametrize("language", ["az", "en"])
def test_no_sentence_shows_a_raw_name_or_placeholder(language: str) -> None:
    t = i18n.gettext(language)
    names = {HEAD: "Aysel Quliyeva"}
    for kind in CASE_EVENTS:
        said = case.sentence(event(kind), names, t, language)
        assert kind not in said and "%(" not in said, (kind, said)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", said), (kind, said)


def test_a_grant_of_status_names_the_person_and_the_date_in_each_language() -> None:
    granted = event("IdpStatusGranted", effective_date="1994-05-01", basis="Law 669-IQ")
    names = {HEAD: "Aysel Quliyeva"}
    english = case.sentence(granted, names, i18n.gettext("en"), "en")
    azerbaijani = case.sentence(granted, names, i18n.gettext("az"), "az")
    assert english == "Aysel Quliyeva was granted IDP status from 1 May 1994."
    assert azerbaijani == ("Aysel Quliyeva 1 may 1994 tarixindən məcburi köçkün statusu aldı.")


def test_values_are_translated_not_shown_as_codes() -> None:
    recorded = event("HousingConditionRecorded", condition="unfinished_building", note=None)
    said = case.sentence(recorded, {}, i18n.gettext("az"), "az")
    assert (
        said == "Ailənin yaşayış şəraiti qeydə alındı: yarımçıq bina (kollektiv məskunlaşma yeri)."
    )


def test_an_unknown_event_is_named_readably() -> None:
    said = case.sentence(event("HouseholdMovedAbroad"), {}, i18n.gettext("en"), "en")
    assert said == "Household moved abroad."
    assert case.readable("not_ready_to_move") == "not ready to move"
    assert case.label(i18n.gettext("en"), "stage", "teleported") == "teleported"


def test_the_timeline_is_newest_first_with_who_when_and_why() -> None:
    events = [
        event(
            "PersonRegistered", first_name="Aysel", last_name="Quliyeva", birth_date="1980-03-01"
        ),
        {**event("ConsentWithdrawn"), "reason": "the family changed its mind", "by": "op-rauf"},
    ]
    names = case.person_names([], events)
    lines = case.timeline(events, names, i18n.gettext("en"), "en")
    assert [line["what"] for line in lines] == [
        "The family withdrew its consent to return.",
        "Aysel Quliyeva was registered (born 1 March 1980).",
    ]
    assert lines[0]["by"] == "op-rauf" and lines[0]["reason"] == "the family changed its mind"
    assert lines[0]["role"] == "operator"


def test_a_members_status_and_its_date_come_from_the_latest_grant_or_end() -> None:
    other = "22222222-2222-5222-8222-222222222222"
    events = [
        event("IdpStatusGranted", effective_date="1994-05-01"),
        {**event("IdpStatusGranted", effective_date="1993-10-30"), "aggregate_id": other},
        event("IdpStatusEnded", effective_date="2026-11-30"),
    ]
    assert case.statuses(events) == {
        HEAD: ("ended", "2026-11-30"),
        other: ("active", "1993-10-30"),
    }


def test_each_criterion_gets_its_line_of_the_explanation_and_the_last_line_is_the_result() -> None:
    decision = {
        "outcomes": [
            {"criterion_id": "origin", "kind": "eligibility", "outcome": "met"},
            {"criterion_id": "others_flat", "kind": "priority", "outcome": "not_met"},
        ],
        "explanation": ["Condition origin: … — met.", "Priority group others_flat: …", "Eligible."],
    }
    criteria, summary = case.explained(decision)
    assert [c["explanation"] for c in criteria] == [
        "Condition origin: … — met.",
        "Priority group others_flat: …",
    ]
    assert summary == "Eligible."
    assert case.outcome_label(i18n.gettext("en"), "exclusion", "met") == "applies"


def test_as_of_a_date_is_the_last_instant_of_that_day_in_baku() -> None:
    moment = datetime.fromisoformat(case.as_of_moment(date(2026, 11, 30)))
    assert moment.astimezone(ZoneInfo("Asia/Baku")).date() == date(2026, 11, 30)
    assert moment.isoformat().startswith("2026-11-30T23:59:59.999999+04:00")
    assert case.parse_day("2026-02-30") is None and case.parse_day(" 2026-02-28 ")
