"""The console's case pages: a household with its members and their statuses, the current
eligibility decision explained criterion by criterion (and, for auditors and supervisors, its
re-run beside what was recorded), the relocation stage, the reintegration follow-up, every
event of the case as a sentence, and the case as it stood on any date.

Every figure comes from the API, called as the signed-in person (their role, districts and
read log); an auditor first says why they read the case, and that purpose goes with every
call the page makes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from api.console.client import Answer
from api.console.i18n import BAKU, when
from api.console.web import AnyRole, Page, PageProblem, SignInRequired, secure
from domain.geography import settlement

router = APIRouter(include_in_schema=False)
Translate = Callable[..., str]


def N_(message: str) -> str:
    """Marks a message for translation where it is declared; translated where it is shown."""
    return message


# --- the words for values the API answers with ----------------------------------------------

LABELS: dict[str, dict[str, str]] = {
    "housing_condition": {
        "dormitory": N_("a dormitory (collective centre)"),
        "sanatorium": N_("a sanatorium (collective centre)"),
        "unfinished_building": N_("an unfinished building (collective centre)"),
        "administrative_building": N_("an administrative building (collective centre)"),
        "others_flat": N_("someone else's flat"),
        "own_or_rented": N_("own or rented housing"),
    },
    "vulnerability": {
        "disability": N_("disability"),
        "chronic_illness": N_("chronic illness"),
        "single_parent": N_("single parent"),
        "elderly_living_alone": N_("elderly person living alone"),
        "martyr_family": N_("martyr's family"),
        "war_participant": N_("war participant"),
    },
    "relationship": {
        "head": N_("head of household"),
        "spouse": N_("spouse"),
        "child": N_("child"),
        "parent": N_("parent"),
        "sibling": N_("brother or sister"),
        "grandchild": N_("grandchild"),
        "grandparent": N_("grandparent"),
        "child_in_law": N_("son- or daughter-in-law"),
        "parent_in_law": N_("father- or mother-in-law"),
        "other_relative": N_("other relative"),
    },
    "sex": {"female": N_("female"), "male": N_("male")},
    "idp_status": {
        "none": N_("no IDP status"),
        "active": N_("IDP status active"),
        "ended": N_("IDP status ended"),
    },
    "stage": {
        "offered": N_("offered a house"),
        "allocated": N_("house allocated"),
        "consented": N_("consent to return given"),
        "scheduled": N_("in a convoy"),
        "departed": N_("departed"),
        "arrived": N_("arrived"),
        "keys_handed_over": N_("keys handed over"),
        "residence_registered": N_("residence registered"),
        "completed": N_("relocation completed"),
    },
    "utility": {
        "electricity": N_("electricity"),
        "gas": N_("gas"),
        "water": N_("water"),
        "internet": N_("internet"),
    },
    "service": {"school": N_("school"), "clinic": N_("clinic"), "kindergarten": N_("kindergarten")},
    "iasc": {
        "safety_and_security": N_("safety and security"),
        "adequate_standard_of_living": N_("adequate standard of living"),
        "livelihoods_and_employment": N_("livelihoods and employment"),
        "housing_land_and_property": N_("housing, land and property"),
        "documentation": N_("documentation"),
        "family_reunification": N_("family reunification"),
        "participation_in_public_affairs": N_("participation in public affairs"),
        "access_to_remedies": N_("access to remedies"),
    },
    "result": {
        "eligible": N_("eligible"),
        "ineligible": N_("not eligible"),
        "needs_review": N_("needs review"),
    },
    "priority_group": {
        "collective_centre": N_("living in a collective centre"),
        "others_flat": N_("living in someone else's flat"),
        "martyr_or_war_participant": N_("martyr's family or war participant"),
        "other": N_("other families"),
    },
    "kind": {
        "eligibility": N_("condition"),
        "exclusion": N_("exclusion"),
        "priority": N_("priority group"),
    },
    "decline_reason": {
        "location": N_("the location"),
        "size": N_("the size"),
        "condition": N_("the condition of the house"),
        "not_ready_to_move": N_("not ready to move"),
        "other": N_("another reason"),
    },
    "member_reason": {
        "birth": N_("birth"),
        "marriage": N_("marriage"),
        "adoption": N_("adoption"),
        "death": N_("death"),
        "marriage_out": N_("married out"),
        "moved_out": N_("moved out"),
        "other": N_("another reason"),
    },
    "field": {
        "first_name": N_("first name"),
        "last_name": N_("last name"),
        "patronymic": N_("patronymic"),
        "birth_date": N_("date of birth"),
        "sex": N_("sex"),
        "idp_certificate_number": N_("IDP certificate number"),
        "registered_address": N_("registered address"),
    },
    "appeal_outcome": {"upheld": N_("upheld"), "rejected": N_("rejected")},
}
"""Each value the API may answer with, as a message; a value not listed is shown readably."""

OUTCOMES = {
    ("eligibility", "met"): N_("met"),
    ("eligibility", "not_met"): N_("not met"),
    ("exclusion", "met"): N_("applies"),
    ("exclusion", "not_met"): N_("does not apply"),
    ("priority", "met"): N_("applies"),
    ("priority", "not_met"): N_("does not apply"),
}
"""A criterion's outcome in the words its kind calls for (an exclusion that is "met" applies)."""


def readable(value: Any) -> str:
    """A value no table names, readable anyway: ``not_ready_to_move`` → "not ready to move",
    ``SomethingHappened`` → "Something happened"."""
    text = str(value)
    if re.fullmatch(r"[A-Z][A-Za-z0-9]*", text):
        words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", text)
        return " ".join([words[0], *(w.lower() for w in words[1:])])
    return text.replace("_", " ")


def label(t: Translate, table: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    message = LABELS.get(table, {}).get(str(value))
    return t(message) if message else readable(value)


def outcome_label(t: Translate, kind: str | None, outcome: str | None) -> str:
    if outcome is None:
        return "—"
    if outcome == "unknown":
        return t(N_("cannot be decided"))
    message = OUTCOMES.get((kind or "", outcome))
    return t(message) if message else readable(outcome)


# --- the timeline: each event as a sentence --------------------------------------------------

SENTENCES: dict[str, str] = {
    "HouseholdRegistered": N_(
        "The household was registered, from %(settlement)s (members: %(members)s)."
    ),
    "PersonRegistered": N_("%(person)s was registered (born %(birth_date)s)."),
    "IdpStatusGranted": N_("%(person)s was granted IDP status from %(effective_date)s."),
    "IdpStatusEnded": N_("The IDP status of %(person)s ended on %(effective_date)s."),
    "PersonDeathRecorded": N_("The death of %(person)s on %(date_of_death)s was recorded."),
    "PersonDetailCorrected": N_(
        "A detail of %(person)s was corrected: %(field)s, from “%(old_value)s” to “%(new_value)s”."
    ),
    "PersonMovedToHousehold": N_("%(person)s moved into this household."),
    "IdpStatusReferenceIssued": N_("A reference of the IDP status of %(person)s was issued."),
    "HouseholdMemberAdded": N_("%(member)s joined the household as %(relationship)s (%(why)s)."),
    "HouseholdMemberRemoved": N_("%(member)s left the household (%(why)s)."),
    "HouseholdHeadChanged": N_("%(head)s became the head of household."),
    "HouseholdMembersSplitOff": N_("Members split off into a household of their own: %(count)s."),
    "HousingConditionRecorded": N_("The family's housing was recorded: %(condition)s."),
    "VulnerabilityRecorded": N_("A vulnerability was recorded: %(vulnerability)s."),
    "VulnerabilityCleared": N_("A vulnerability was cleared: %(vulnerability)s."),
    "HouseholdCircumstancesVerified": N_(
        "The family's circumstances were verified on %(verified_on)s (%(document)s)."
    ),
    "SurveyStarted": N_("The pre-return survey was started."),
    "SurveyQuestionAnswered": N_("A survey question was answered: %(question)s."),
    "SurveyAnswerCorrected": N_("A survey answer was corrected: %(question)s."),
    "SurveyCompleted": N_("The survey was completed (answers: %(answered)s)."),
    "EligibilityDetermined": N_(
        "Eligibility was determined under %(rule_set)s: %(result)s (decision %(sequence)s)."
    ),
    "DecisionOverridden": N_("A supervisor overrode the decision: %(result)s."),
    "AppealLodged": N_("The family appealed against the decision."),
    "AppealDecided": N_("The appeal was decided: %(outcome)s."),
    "RelocationOpened": N_("The relocation case was opened for %(settlement)s."),
    "HousingOffered": N_(
        "A house was offered: %(address)s (rooms: %(rooms)s), open until %(deadline)s."
    ),
    "HousingOfferAccepted": N_("The family accepted the house at %(address)s."),
    "HousingOfferDeclined": N_("The family declined the offer because of %(decline_reason)s."),
    "HousingOfferExpired": N_("The offer expired unanswered on %(deadline)s."),
    "ConsentToReturnGiven": N_("The family gave its informed consent to return (%(document)s)."),
    "ConsentWithdrawn": N_("The family withdrew its consent to return."),
    "RelocationScheduled": N_("The family was placed in a convoy departing on %(departs_on)s."),
    "FamilyDeparted": N_("The family departed on %(departed_on)s."),
    "FamilyArrived": N_(
        "The family arrived on %(arrived_on)s (persons arrived: %(members_arrived)s)."
    ),
    "KeysHandedOver": N_("The keys were handed over on %(handed_over_on)s."),
    "ResidenceRegistered": N_("Residence was registered at %(address)s on %(registered_on)s."),
    "UtilityConnected": N_("A utility was connected on %(connected_on)s: %(utility)s."),
    "RelocationCompleted": N_("The relocation was completed on %(completed_on)s."),
    "ReintegrationOpened": N_("The reintegration follow-up was opened."),
    "BenefitChanged": N_(
        "The monthly allowance was set to %(amount)s AZN, until %(terminates_on)s."
    ),
    "EmploymentNeedRecorded": N_("Persons of the family seeking work: %(persons)s."),
    "EmploymentProvided": N_("A member of the family started work at %(employer)s."),
    "ServiceEnrolled": N_("Enrolled in a service: %(service)s, %(institution)s."),
    "DurableSolutionAssessed": N_(
        "Durable-solution criterion assessed: %(criterion)s, %(verdict)s."
    ),
}
"""Each event of a case as a sentence; the values come from what the event recorded."""

DATES = (
    "birth_date",
    "effective_date",
    "date_of_death",
    "verified_on",
    "deadline",
    "departs_on",
    "departed_on",
    "arrived_on",
    "handed_over_on",
    "registered_on",
    "connected_on",
    "completed_on",
    "terminates_on",
    "assessed_on",
    "start_date",
    "enrolled_on",
)


def person_names(
    members: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Person id → name, from the members today and from every person the case registered
    (so a member who has left is still named)."""
    names: dict[str, str] = {}
    for event in events:
        if event.get("event") == "PersonRegistered":
            names[str(event.get("aggregate_id"))] = full_name(event.get("data") or {})
    for member in members:
        if member.get("first_name") or member.get("last_name"):
            names[str(member["person_id"])] = full_name(member)
    return names


def full_name(person: Mapping[str, Any]) -> str:
    parts = (person.get("first_name"), person.get("patronymic"), person.get("last_name"))
    return " ".join(str(p) for p in parts if p) or "—"


class Recorded(dict[str, Any]):
    """What an event recorded; a value it did not record (an older version of it) is "—"."""

    def __missing__(self, key: str) -> str:
        return "—"


def sentence(
    event: Mapping[str, Any], names: Mapping[str, str], t: Translate, language: str
) -> str:
    """What happened, in a sentence of ``language``; an event this page does not know is
    named readably (``SomethingHappened`` → "Something happened")."""
    kind = str(event.get("event") or "")
    data = dict(event.get("data") or {})
    message = SENTENCES.get(kind)
    if message is None:
        return t(N_("%(event)s."), event=readable(kind or "?"))
    values: dict[str, Any] = {k: ("—" if v is None else v) for k, v in data.items()}
    for key in DATES:
        if key in data:
            values[key] = when(data[key], language)
    someone = t(N_("a person"))
    values["person"] = names.get(str(event.get("aggregate_id")), someone)
    values["member"] = names.get(str(data.get("person_id")), data.get("fin") or someone)
    values["head"] = names.get(str(data.get("head_person_id")), someone)
    values["members"] = len(data.get("members") or [])
    values["count"] = len(data.get("person_ids") or [])
    values["settlement"] = settlement_name(
        data.get("origin_settlement_code") or data.get("settlement_code"), language
    )
    values["relationship"] = label(t, "relationship", data.get("relationship"))
    values["why"] = label(t, "member_reason", data.get("reason"))
    values["field"] = label(t, "field", data.get("field"))
    values["condition"] = label(t, "housing_condition", data.get("condition"))
    values["vulnerability"] = label(t, "vulnerability", data.get("vulnerability"))
    values["document"] = data.get("document_reference") or "—"
    values["question"] = readable(data.get("question_id") or "—")
    values["result"] = label(t, "result", data.get("result"))
    values["outcome"] = label(t, "appeal_outcome", data.get("outcome"))
    if data.get("rule_set_code"):
        values["rule_set"] = f"{data['rule_set_code']} v{data.get('rule_set_version')}"
    values["decline_reason"] = label(t, "decline_reason", data.get("reason"))
    values["utility"] = label(t, "utility", data.get("utility"))
    values["service"] = label(t, "service", data.get("service"))
    values["amount"] = data.get("monthly_amount_azn", "—")
    values["persons"] = data.get("persons_seeking_work", "—")
    values["criterion"] = label(t, "iasc", data.get("criterion"))
    values["verdict"] = t(N_("met")) if data.get("met") else t(N_("not met"))
    return t(message) % Recorded(values)


def timeline(
    events: Iterable[Mapping[str, Any]], names: Mapping[str, str], t: Translate, language: str
) -> list[dict[str, Any]]:
    """The case's events, newest first, each with its sentence, who (and in which role),
    when and why."""
    lines = [
        {
            "at": event.get("at"),
            "what": sentence(event, names, t, language),
            "by": event.get("by") or "—",
            "role": t(str(event["role"])) if event.get("role") else None,
            "reason": event.get("reason"),
        }
        for event in events
    ]
    return lines[::-1]


def statuses(events: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """Person id → (IDP status, since when), from the latest grant or end of each person's
    status in the case's events."""
    found: dict[str, tuple[str, str | None]] = {}
    for event in events:
        kind = event.get("event")
        if kind in ("IdpStatusGranted", "IdpStatusEnded"):
            data = event.get("data") or {}
            status = "active" if kind == "IdpStatusGranted" else "ended"
            found[str(event.get("aggregate_id"))] = (status, data.get("effective_date"))
    return found


def settlement_name(code: Any, language: str) -> str:
    if not code:
        return "—"
    found = settlement(str(code))
    if found is None:
        return str(code)
    return f"{found.name_az if language == 'az' else found.name_en} ({found.code})"


def explained(decision: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The decision's criteria, each with its line of the API's explanation (same order; the
    explanation's last line is the result)."""
    lines = list(decision.get("explanation") or [])
    outcomes = list(decision.get("outcomes") or [])
    criteria = [
        {**o, "explanation": lines[i] if i < len(lines) else None} for i, o in enumerate(outcomes)
    ]
    summary = lines[len(outcomes)] if len(lines) > len(outcomes) else None
    return criteria, summary


def as_of_moment(day: date) -> str:
    """The last instant of ``day`` in Baku: the case as it stood when that day ended."""
    end = datetime.combine(day + timedelta(days=1), time(), BAKU) - timedelta(microseconds=1)
    return end.isoformat()


# --- calling the API ------------------------------------------------------------------------

NOT_FOUND = N_("No such case, or it is outside your districts.")
PURPOSE_FIELDS = {"reason", "X-Access-Reason", "query.reason"}


def required(answer: Answer, page: Page) -> Any:
    """The answer's body; the API's refusal as the console's page otherwise."""
    if answer.ok:
        return answer.body
    path = page.request.url.path
    query = page.request.url.query
    if answer.status == 401:
        raise SignInRequired(path + (f"?{query}" if query else ""))
    if answer.status == 404:
        raise PageProblem(404, "Not found", NOT_FOUND)
    if answer.status == 403:
        raise PageProblem(403, "Your role may not open this page")
    if answer.status == 422 and set(answer.field_errors()) & PURPOSE_FIELDS:
        raise PurposeRefused()
    if answer.status == 422:  # an address no case can have (a malformed FIN, say)
        raise PageProblem(404, "Not found", NOT_FOUND)
    raise PageProblem(502, N_("The case could not be read"), N_("Try again in a moment."))


def optional(answer: Answer, page: Page) -> Any:
    """As :func:`required`, but a part of the case that does not exist yet is None."""
    return None if answer.status == 404 else required(answer, page)


class PurposeRefused(Exception):
    """The API refused the auditor's purpose (empty, too long, or not a line of text)."""


def case_id(household_id: str) -> UUID:
    try:
        return UUID(household_id)
    except ValueError:
        raise PageProblem(404, "Not found", NOT_FOUND) from None


def purpose(reason: str | None) -> str | None:
    """The purpose the reader gave, trimmed; None when none was given."""
    cleaned = (reason or "").strip()
    return cleaned or None


def ask_purpose(page: Page, problem: str | None = None) -> Response:
    """The small form an auditor fills before reading a case: the same address again, with
    its query and the purpose."""
    kept = {k: v for k, v in page.request.query_params.items() if k != "reason"}
    return page.render(
        "case/purpose.html",
        status=422 if problem else 200,
        action=page.request.url.path,
        kept=kept,
        problem=problem,
    )


def needs_purpose(page: Page, reason: str | None) -> bool:
    return page.actor.role == "auditor" and purpose(reason) is None


def link(path: str, **query: Any) -> str:
    cleaned = {k: v for k, v in query.items() if v not in (None, "")}
    return path + (f"?{urlencode(cleaned)}" if cleaned else "")


# --- the pages ------------------------------------------------------------------------------


@router.get("/console/households/{household_id}")
async def case(
    household_id: str, page: AnyRole, reason: str | None = None, at: str | None = None
) -> Response:
    """``at``: the log position a command of the console answered with (a task redirects here
    with it): the read models are waited for until they hold it (read your own writes)."""
    hid = case_id(household_id)
    if needs_purpose(page, reason):
        return ask_purpose(page)
    why = purpose(reason)
    base = f"/api/v1/households/{hid}"
    api = page.api
    fresh = {"min_position": at} if at and at.isdigit() else {}
    try:
        household, decision, relocation, reintegration, events = await asyncio.gather(
            api.get(base, params=fresh, reason=why),
            api.get(f"{base}/eligibility", params={"lang": page.language, **fresh}, reason=why),
            api.get(f"{base}/relocation", params=fresh, reason=why),
            api.get(f"{base}/reintegration", params=fresh, reason=why),
            api.get(f"{base}/timeline", params=fresh, reason=why),
        )
        found = required(household, page)
        context = case_context(
            page,
            found,
            optional(decision, page),
            optional(relocation, page),
            optional(reintegration, page),
            required(events, page),
        )
    except PurposeRefused:
        return ask_purpose(
            page, N_("Give the purpose in one line of text, at most 500 characters.")
        )
    return page.render("case/case.html", reason=why, **context)


def case_context(
    page: Page,
    household: dict[str, Any],
    decision: dict[str, Any] | None,
    relocation: dict[str, Any] | None,
    reintegration: dict[str, Any] | None,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    t, language = page.t, page.language
    names = person_names(household["members"], events)
    since = statuses(events)
    members = [
        {
            **m,
            "name": full_name(m),
            "is_head": m["person_id"] == household["head_person_id"],
            "relationship_label": label(t, "relationship", m.get("relationship")),
            "sex_label": label(t, "sex", m.get("sex")),
            "status_label": label(t, "idp_status", m.get("idp_status")),
            "status_since": since.get(str(m["person_id"]), (None, None))[1],
        }
        for m in household["members"]
    ]
    criteria, summary = explained(decision) if decision else ([], None)
    return {
        "household": household,
        "household_id": household["household_id"],
        "head": next((m for m in members if m["is_head"]), None),
        "members": members,
        "settlement": settlement_name(household.get("origin_settlement_code"), language),
        "housing": label(t, "housing_condition", household.get("housing_condition")),
        "vulnerabilities": [label(t, "vulnerability", v) for v in household["vulnerabilities"]],
        "decision": decision,
        "criteria": [
            {
                **c,
                "kind_label": label(t, "kind", c.get("kind")),
                "outcome_label": outcome_label(t, c.get("kind"), c.get("outcome")),
            }
            for c in criteria
        ],
        "summary": summary,
        "result": label(t, "result", decision and decision.get("effective_result")),
        "priority_group": label(
            t, "priority_group", decision and decision.get("effective_priority_group")
        ),
        "relocation": relocation,
        "stage": label(t, "stage", relocation and relocation.get("stage")),
        "utilities": [
            label(t, "utility", u.get("utility") if isinstance(u, dict) else u)
            for u in (relocation or {}).get("utilities") or []
        ],
        "reintegration": reintegration,
        "services": [
            {**s, "label": label(t, "service", s.get("service"))}
            for s in (reintegration or {}).get("services") or []
        ],
        "unmet": [label(t, "iasc", c) for c in (reintegration or {}).get("unmet_criteria") or []],
        "met": [
            label(t, "iasc", key.split(":", 1)[1])
            for key, value in ((reintegration or {}).get("assessments") or {}).items()
            if key.startswith("iasc:") and value
        ],
        "timeline": timeline(events, names, t, language),
        "may_audit": page.actor.role in ("auditor", "supervisor"),
    }


@router.get("/console/households/{household_id}/rerun")
async def rerun(
    household_id: str, page: AnyRole, decision_id: str | None = None, reason: str | None = None
) -> Response:
    """The auditor's re-run of the current decision, criterion by criterion beside what was
    recorded: a part of the case page for htmx, a page of its own without JavaScript."""
    hid = case_id(household_id)
    if needs_purpose(page, reason):
        return ask_purpose(page)
    why = purpose(reason)
    try:
        did = UUID(decision_id or "")
    except ValueError:
        raise PageProblem(404, "Not found", NOT_FOUND) from None
    try:
        result, decision = await asyncio.gather(
            page.api.get(f"/api/v1/audit/decisions/{did}/rerun", reason=why),
            page.api.get(
                f"/api/v1/eligibility/decisions/{did}", params={"lang": page.language}, reason=why
            ),
        )
        found = required(result, page)
        recorded = required(decision, page)
    except PurposeRefused:
        return ask_purpose(
            page, N_("Give the purpose in one line of text, at most 500 characters.")
        )
    if str(found.get("household_id")) != str(hid):
        raise PageProblem(404, "Not found", NOT_FOUND)
    criteria, _ = explained(recorded)
    said = {c["criterion_id"]: c.get("explanation") for c in criteria}
    compared = [
        {
            **c,
            "kind_label": label(page.t, "kind", c.get("kind")),
            "recorded_label": outcome_label(page.t, c.get("kind"), c.get("recorded")),
            "rerun_label": outcome_label(page.t, c.get("kind"), c.get("rerun")),
            "explanation": said.get(c.get("criterion_id")),
        }
        for c in found.get("criteria") or []
    ]
    context = {
        "household_id": str(hid),
        "rerun": found,
        "recorded": recorded,
        "compared": compared,
        "result": label(page.t, "result", recorded.get("result")),
        "reason": why,
        "level": 3,
    }
    template = "case/_rerun.html" if page.request.headers.get("hx-request") else "case/rerun.html"
    return page.render(template, **context)


@router.get("/console/households/{household_id}/as-of")
async def as_of(
    household_id: str, page: AnyRole, date: str | None = None, reason: str | None = None
) -> Response:
    """The case as it stood when a day ended (Baku time), replayed from the event log."""
    hid = case_id(household_id)
    if needs_purpose(page, reason):
        return ask_purpose(page)
    why = purpose(reason)
    day = parse_day(date)
    if day is None:
        return page.render(
            "case/as_of.html",
            status=422,
            household_id=str(hid),
            day=date or "",
            problem=N_("Give a date as YYYY-MM-DD.") if date else N_("Give a date."),
            state=None,
            reason=why,
        )
    try:
        answer = await page.api.get(
            f"/api/v1/audit/households/{hid}", params={"as_of": as_of_moment(day)}, reason=why
        )
        if answer.status == 404:  # not registered yet on that day, or no such case at all
            required(await page.api.get(f"/api/v1/households/{hid}", reason=why), page)
            state = None
        else:
            state = required(answer, page)
    except PurposeRefused:
        return ask_purpose(
            page, N_("Give the purpose in one line of text, at most 500 characters.")
        )
    return page.render(
        "case/as_of.html",
        household_id=str(hid),
        day=day.isoformat(),
        problem=None,
        state=state and as_of_context(page, state),
        reason=why,
    )


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def as_of_context(page: Page, state: dict[str, Any]) -> dict[str, Any]:
    t, language = page.t, page.language
    household = state["household"]
    decision = state.get("eligibility_decision")
    return {
        "position": state.get("position"),
        "household": household,
        "settlement": settlement_name(household.get("origin_settlement_code"), language),
        "housing": label(t, "housing_condition", household.get("housing_condition")),
        "vulnerabilities": [
            label(t, "vulnerability", v.get("vulnerability")) for v in household["vulnerabilities"]
        ],
        "members": [
            {
                **m,
                "name": full_name(m),
                "is_head": m["person_id"] == household["head_person_id"],
                "relationship_label": label(t, "relationship", m.get("relationship")),
                "status_label": label(t, "idp_status", m.get("idp_status")),
            }
            for m in state["members"]
        ],
        "decision": decision,
        "result": label(t, "result", decision and decision.get("result")),
        "priority_group": label(t, "priority_group", decision and decision.get("priority_group")),
        "stage": label(t, "stage", state.get("relocation_stage")),
        "allocation": state.get("allocation"),
    }


@router.get("/console/persons/{fin}")
async def person(fin: str, page: AnyRole, reason: str | None = None) -> Response:
    """A person's household case (the FIN stays out of every log line: the API's route
    template is what the read log records)."""
    if needs_purpose(page, reason):
        return ask_purpose(page)
    why = purpose(reason)
    try:
        found = required(await page.api.get(f"/api/v1/persons/{fin}", reason=why), page)
    except PurposeRefused:
        return ask_purpose(
            page, N_("Give the purpose in one line of text, at most 500 characters.")
        )
    household = found.get("household_id")
    if not household:
        raise PageProblem(404, "Not found", NOT_FOUND)
    return secure(RedirectResponse(link(f"/console/households/{household}", reason=why), 303))
