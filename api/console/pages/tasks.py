"""The operator's tasks: register a household, record its survey answers, answer its housing
offer, record its consent to return (or its withdrawal), and the steps of its move.

Every form posts to the console, which posts the API's own command as the signed-in person
(:mod:`api.console.client`) with an idempotency key made when the form was shown, so a form
sent twice records once. The API validates: its reasons are shown beside their fields in the
page's language (:mod:`api.console.task_forms`), and the form keeps what was typed. A refusal
that names no field (a case outside the caller's districts: 403; a step the case's state does
not allow: 409) is the page's problem, shown above the form."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from api.console import task_forms as tf
from api.console.client import Answer
from api.console.task_forms import Action, Field
from api.console.web import Page, PageProblem, SignInRequired, roles, secure
from domain import registry
from domain import relocation as rl
from domain.geography import settlements

router = APIRouter(include_in_schema=False)

Operator = Annotated[Page, roles("operator", "supervisor")]
N_ = str  # marks a message for extraction without translating it here

QUESTIONNAIRE = ("pre-return", 1)
"""The survey an operator starts from a household's page."""

LABELS = {
    "female": N_("female"),
    "male": N_("male"),
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
    "location": N_("the location"),
    "size": N_("the size"),
    "condition": N_("the condition"),
    "not_ready_to_move": N_("not ready to move"),
    "other": N_("another reason"),
    **tf.UTILITIES,
    **tf.STAGES,
}
assert set(LABELS) >= {*registry.SEXES, *registry.RELATIONSHIPS, *rl.DECLINE_REASONS}

MOVED = ("departed", "arrived", "keys_handed_over", "residence_registered", "completed")
ACTIONS = (
    Action(
        "accept",
        N_("The offer is accepted."),
        N_("Accept the offer"),
        "/api/v1/households/{household_id}/offer/acceptance",
        button=N_("Accept the offer"),
        stages=("offered",),
    ),
    Action(
        "decline",
        N_("The decline is recorded."),
        N_("Decline the offer"),
        "/api/v1/households/{household_id}/offer/decline",
        (
            Field("reason", N_("Reason"), "select", choices=rl.DECLINE_REASONS),
            Field("note", N_("Note"), "paragraph", required=False),
        ),
        button=N_("Decline the offer"),
        stages=("offered",),
    ),
    Action(
        "consent",
        N_("Consent to return is recorded."),
        N_("Record consent to return"),
        "/api/v1/households/{household_id}/consent",
        (
            Field(
                "informed_of",
                N_("What the family was informed of"),
                "lines",
                hint=N_("One a line: the house and its address, the date, the services…"),
            ),
            Field("document_reference", N_("Reference of the signed consent form")),
            Field("recorded_by", N_("Consent taken by")),
        ),
        button=N_("Record consent"),
        stages=("opened", "offered", "allocated"),
    ),
    Action(
        "withdrawal",
        N_("The withdrawal of consent is recorded."),
        N_("Record the withdrawal of consent"),
        "/api/v1/households/{household_id}/consent/withdrawal",
        (Field("reason", N_("Reason")),),
        button=N_("Record the withdrawal"),
        stages=("opened", "offered", "allocated", "consented", "scheduled"),
    ),
    Action(
        "convoy",
        N_("The convoy is scheduled."),
        N_("Schedule a convoy for the family"),
        "/api/v1/convoys",
        (
            Field("departs_on", N_("Departs on"), "date"),
            Field("vehicles", N_("Vehicles"), "number"),
        ),
        button=N_("Schedule the convoy"),
        stages=("consented",),
    ),
    Action(
        "departure",
        N_("The convoy's departure is recorded."),
        N_("Record the convoy's departure"),
        "/api/v1/convoys/{convoy_id}/departure",
        (Field("departed_on", N_("Departed on"), "date"),),
        button=N_("Record the departure of every family in the convoy"),
        stages=("scheduled",),
    ),
    Action(
        "arrival",
        N_("The arrival is recorded."),
        N_("Record the arrival"),
        "/api/v1/households/{household_id}/arrival",
        (
            Field("arrived_on", N_("Arrived on"), "date"),
            Field("members_arrived", N_("Members who arrived"), "number"),
        ),
        stages=("departed",),
    ),
    Action(
        "keys",
        N_("The handover of the keys is recorded."),
        N_("Record the handover of the keys"),
        "/api/v1/households/{household_id}/keys",
        (Field("handed_over_on", N_("Handed over on"), "date"),),
        stages=("arrived",),
    ),
    Action(
        "residence",
        N_("The residence is registered."),
        N_("Register residence at the new address"),
        "/api/v1/households/{household_id}/residence",
        (
            Field("registered_on", N_("Registered on"), "date"),
            Field("registration_reference", N_("Registration reference")),
        ),
        stages=("keys_handed_over",),
    ),
    Action(
        "utility",
        N_("The connection is recorded."),
        N_("Record a utility connection"),
        "/api/v1/households/{household_id}/utilities",
        (
            Field("utility", N_("Utility"), "select", choices=rl.UTILITIES),
            Field("connected_on", N_("Connected on"), "date"),
            Field("account_reference", N_("Account reference"), required=False),
        ),
        stages=("keys_handed_over", "residence_registered"),
    ),
    Action(
        "completion",
        N_("The relocation is completed."),
        N_("Complete the relocation"),
        "/api/v1/households/{household_id}/relocation/completion",
        (Field("completed_on", N_("Completed on"), "date"),),
        stages=("residence_registered",),
    ),
)
BY_NAME = {action.name: action for action in ACTIONS}


def new_key() -> str:
    """An idempotency key for one showing of a form: sent twice, it records once."""
    return secrets.token_urlsafe(18)


def refuse(page: Page, answer: Answer) -> None:
    """The answers no form shows beside a field: sign in again, or a missing case."""
    if answer.status == 401:
        raise SignInRequired(str(page.request.url.path))
    if answer.status == 404:
        raise PageProblem(404, N_("Not found"))


def translated(page: Page, problems: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        field: [tf.reason_text(reason, page.t) for reason in reasons]
        for field, reasons in problems.items()
    }


def page_problems(page: Page, answer: Answer, rest: list[str]) -> list[str]:
    """What the page says above the form for an answer that is not a success."""
    lead = {
        403: N_(
            "The API refused this: the case or settlement is outside your districts, or "
            "your role may not do it."
        ),
        409: N_("The API refused this in the case's current state."),
        422: N_("Some fields need correcting: each problem is shown beside its field."),
    }.get(answer.status, N_("The API could not record this; try again."))
    said = [page.t(lead)]
    if answer.status != 403:
        said.extend(tf.reason_text(reason, page.t) for reason in rest if reason)
    return said


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, 303))


def form_values(form: FormData) -> dict[str, str]:
    return {key: str(value) for key, value in form.items() if isinstance(value, str)}


def choices(page: Page, values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, page.t(LABELS.get(value, value))) for value in values]


def settlement_choices(page: Page) -> list[tuple[str, list[tuple[str, str]]]]:
    """Settlements by district, in the page's language."""
    az = page.language == "az"
    groups: dict[str, list[tuple[str, str]]] = {}
    for code, place in sorted(settlements().items()):
        district = place.district_az if az else place.district_en
        groups.setdefault(district, []).append((code, place.name_az if az else place.name_en))
    return sorted(groups.items())


# --- the list of tasks -------------------------------------------------------------------


@router.get("/console/tasks")
async def tasks(page: Operator) -> Response:
    return page.render("tasks/index.html", fin="", problems={})


@router.get("/console/tasks/find")
async def find(page: Operator, fin: str = "") -> Response:
    """A household's tasks, found by a member's FIN."""
    typed = fin.strip()
    answer = await page.api.get("/api/v1/households", params={"fin": typed.upper(), "limit": 1})
    refuse(page, answer)
    if answer.ok and answer.body["items"]:
        return redirect(f"/console/tasks/households/{answer.body['items'][0]['household_id']}")
    if answer.ok:
        problems = {"fin": [page.t(N_("No household has a member with this FIN."))]}
    else:
        problems = {
            "fin": [tf.reason_text(r, page.t) for rs in answer.field_errors().values() for r in rs]
        }
    return page.render("tasks/index.html", status=422, fin=typed, problems=problems)


# --- registering a household -------------------------------------------------------------


HOUSEHOLD_LABELS = {
    "origin_settlement_code": N_("Settlement of origin"),
    "current_address": N_("Current address"),
    "contact_phone": N_("Contact phone"),
    "members": N_("Members"),
}
MEMBER_LABELS = {
    "fin": N_("FIN"),
    "last_name": N_("Last name"),
    "first_name": N_("First name"),
    "patronymic": N_("Patronymic"),
    "birth_date": N_("Date of birth"),
    "sex": N_("Sex"),
    "relationship": N_("Relationship to the head"),
    "idp_certificate_number": N_("IDP certificate number"),
}
assert set(MEMBER_LABELS) == set(tf.MEMBER_FIELDS)


def field_labels(page: Page, members: int) -> dict[str, str]:
    """Each field of the household form named for the list of problems above it."""
    labels = {name: page.t(label) for name, label in HOUSEHOLD_LABELS.items()}
    for i in range(members):
        member = page.t(N_("Member %(num)s"), num=i + 1)
        for name, label in MEMBER_LABELS.items():
            labels[tf.member_field(i, name)] = f"{member}: {page.t(label)}"
    return labels


def household_form(
    page: Page,
    values: dict[str, str],
    members: int,
    key: str,
    problems: dict[str, list[str]] | None = None,
    above: list[str] | None = None,
    status: int = 200,
) -> Response:
    return page.render(
        "tasks/household.html",
        status=status,
        values=values,
        members=members,
        key=key,
        problems=problems or {},
        above=above or [],
        settlements=settlement_choices(page),
        sexes=choices(page, registry.SEXES),
        relationships=choices(page, registry.RELATIONSHIPS),
        member_field=tf.member_field,
        labels=field_labels(page, members),
    )


@router.get("/console/tasks/households/new")
async def new_household(page: Operator) -> Response:
    return household_form(page, {}, 1, new_key())


@router.post("/console/tasks/households/new")
async def register(page: Operator) -> Response:
    form = await page.request.form()
    page.check_csrf(str(form.get("csrf") or ""))
    values = form_values(form)
    change = values.get("change")
    key = values.get("key") or new_key()
    if change in ("add", "remove"):
        return household_form(page, values, tf.member_count(values, change), key)
    members = tf.member_count(values)
    answer = await page.api.post(
        "/api/v1/households", json=tf.household_body(values), idempotency_key=key
    )
    if answer.ok:  # the case page reads with min_position=at: it shows what was just recorded
        position = answer.headers.get("log-position")
        query = f"?at={position}" if position else ""
        return redirect(f"/console/households/{answer.body['household_id']}{query}")
    refuse(page, answer)
    by_field, rest = tf.place_problems(
        tf.problems_of(answer.status, answer.problem), tf.household_fields(members)
    )
    return household_form(
        page,
        values,
        members,
        key,
        translated(page, by_field),
        page_problems(page, answer, rest),
        status=answer.status if answer.status in (403, 409, 422) else 400,
    )


# --- a household's tasks -----------------------------------------------------------------


def offered(case: dict[str, Any] | None) -> list[Action]:
    """The actions the case's stage allows (the API judges; this only spares the choice)."""
    if case is None:
        return []
    stage = case.get("stage") or "opened"
    found = []
    for action in ACTIONS:
        if action.stages and stage not in action.stages:
            continue
        if action.name == "consent" and case.get("consent"):
            continue
        if action.name == "withdrawal" and not case.get("consent"):
            continue
        if action.name == "utility" and set(rl.UTILITIES) <= set(case.get("utilities") or ()):
            continue
        found.append(action)
    return found


async def household_tasks(
    page: Page,
    household_id: UUID,
    *,
    at: int | None = None,
    failed: str | None = None,
    values: dict[str, str] | None = None,
    problems: dict[str, list[str]] | None = None,
    above: list[str] | None = None,
    status: int = 200,
) -> Response:
    position = {"min_position": at} if at else {}
    found = await page.api.get(f"/api/v1/households/{household_id}", params=position)
    refuse(page, found)
    if not found.ok:
        raise PageProblem(found.status, N_("The case could not be read"))
    relocation = await page.api.get(
        f"/api/v1/households/{household_id}/relocation", params=position
    )
    if relocation.status not in (200, 404):
        refuse(page, relocation)
    case = relocation.body if relocation.ok else None
    done = page.request.query_params.get("done")
    return page.render(
        "tasks/case.html",
        status=status,
        household=found.body,
        case=case,
        actions=offered(case),
        failed=failed,
        values=values or {},
        problems=problems or {},
        above=above or [],
        done=BY_NAME[done].done if done in BY_NAME else None,
        survey_done=done == "survey",
        keys={name: new_key() for name in (*BY_NAME, "survey")},
        labels=LABELS,
        choices=lambda field: choices(page, field.choices),
        questionnaire=QUESTIONNAIRE,
    )


@router.get("/console/tasks/households/{household_id}")
async def household(page: Operator, household_id: UUID, at: int | None = None) -> Response:
    return await household_tasks(page, household_id, at=at)


@router.post("/console/tasks/households/{household_id}/actions/{name}")
async def act(page: Operator, household_id: UUID, name: str) -> Response:
    form = await page.request.form()
    page.check_csrf(str(form.get("csrf") or ""))
    action = BY_NAME.get(name)
    if action is None:
        raise PageProblem(404, N_("Not found"))
    values = form_values(form)
    body = tf.action_body(action, values)
    convoy = values.get("convoy_id", "")
    if "{convoy_id}" in action.path:
        try:
            convoy = str(UUID(str(convoy)))  # a form field never chooses the API's address
        except ValueError:
            raise PageProblem(400, N_("The form has expired")) from None
    path = action.path.format(household_id=household_id, convoy_id=convoy)
    if action.name == "convoy":
        body |= {
            "settlement_code": values.get("settlement_code"),
            "household_ids": [str(household_id)],
        }
    answer = await page.api.post(path, json=body, idempotency_key=values.get("key") or None)
    if answer.ok:
        position = answer.headers.get("log-position")
        query = urlencode({"done": name, **({"at": position} if position else {})})
        return redirect(f"/console/tasks/households/{household_id}?{query}#{name}")
    refuse(page, answer)
    by_field, rest = tf.place_problems(tf.problems_of(answer.status, answer.problem), action.names)
    return await household_tasks(
        page,
        household_id,
        failed=name,
        values=values,
        problems=translated(page, by_field),
        above=page_problems(page, answer, rest),
        status=answer.status if answer.status in (403, 409, 422) else 400,
    )


# --- survey answers ----------------------------------------------------------------------


@router.post("/console/tasks/households/{household_id}/survey")
async def start_survey(page: Operator, household_id: UUID) -> Response:
    form = await page.request.form()
    page.check_csrf(str(form.get("csrf") or ""))
    code, version = QUESTIONNAIRE
    answer = await page.api.post(
        f"/api/v1/households/{household_id}/surveys",
        json={"questionnaire_code": code, "questionnaire_version": version},
        idempotency_key=str(form.get("key") or "") or None,
    )
    refuse(page, answer)
    if not answer.ok:
        return await household_tasks(
            page,
            household_id,
            failed="survey",
            above=page_problems(
                page,
                answer,
                [r for rs in tf.problems_of(answer.status, answer.problem).values() for r in rs],
            ),
            status=answer.status,
        )
    position = answer.headers.get("log-position")
    return redirect(
        f"/console/tasks/households/{household_id}/survey" + (f"?at={position}" if position else "")
    )


async def survey_page(
    page: Page,
    household_id: UUID,
    *,
    at: int | None = None,
    values: dict[str, list[str]] | None = None,
    problems: dict[str, list[str]] | None = None,
    above: list[str] | None = None,
    status: int = 200,
) -> Response:
    position = {"min_position": at} if at else {}
    found = await page.api.get(f"/api/v1/households/{household_id}", params=position)
    refuse(page, found)
    if not found.ok:
        raise PageProblem(found.status, N_("The case could not be read"))
    survey = found.body.get("latest_survey")
    if survey is None:
        return redirect(f"/console/tasks/households/{household_id}")
    questionnaire = await page.api.get(
        f"/api/v1/questionnaires/{survey['questionnaire_code']}/{survey['questionnaire_version']}"
    )
    refuse(page, questionnaire)
    if not questionnaire.ok:
        raise PageProblem(questionnaire.status, N_("The questionnaire could not be read"))
    return page.render(
        "tasks/survey.html",
        status=status,
        household=found.body,
        survey=survey,
        questionnaire=questionnaire.body,
        values=values or {},
        problems=problems or {},
        above=above or [],
        key=new_key(),
        done=page.request.query_params.get("done"),
    )


@router.get("/console/tasks/households/{household_id}/survey")
async def survey(page: Operator, household_id: UUID, at: int | None = None) -> Response:
    return await survey_page(page, household_id, at=at)


@router.post("/console/tasks/households/{household_id}/survey/answers")
async def answers(page: Operator, household_id: UUID) -> Response:
    """Record every question answered in the form, in the questionnaire's order (a question
    asked only after some answers is accepted once they are recorded); then, when asked,
    complete the survey."""
    form = await page.request.form()
    page.check_csrf(str(form.get("csrf") or ""))
    try:
        response_id = UUID(str(form.get("response_id") or ""))
    except ValueError:
        raise PageProblem(400, N_("The survey has changed since the form was shown")) from None
    found = await page.api.get(f"/api/v1/households/{household_id}")
    refuse(page, found)
    survey = found.body.get("latest_survey") if found.ok else None
    if survey is None or str(survey["response_id"]) != str(response_id):
        raise PageProblem(409, N_("The survey has changed since the form was shown"))
    questionnaire = await page.api.get(
        f"/api/v1/questionnaires/{survey['questionnaire_code']}/{survey['questionnaire_version']}"
    )
    refuse(page, questionnaire)
    typed = {
        q["id"]: [str(v) for v in form.getlist(f"q-{q['id']}")]
        for q in questionnaire.body["questions"]
    }
    problems: dict[str, list[str]] = {}
    position = None
    for question in questionnaire.body["questions"]:
        if question["id"] in survey["answers"]:
            continue
        value = tf.answer_value(question["type"], typed[question["id"]])
        if value is None:
            continue
        answer = await page.api.post(
            f"/api/v1/surveys/{response_id}/answers",
            json={"question_id": question["id"], "value": value},
        )
        refuse(page, answer)
        if answer.ok:
            position = answer.headers.get("log-position") or position
            typed.pop(question["id"])
            continue
        problems[f"q-{question['id']}"] = [
            tf.reason_text(r, page.t)
            for rs in tf.problems_of(answer.status, answer.problem).values()
            for r in rs
        ]
    above: list[str] = []
    if not problems and form.get("complete"):
        answer = await page.api.post(f"/api/v1/surveys/{response_id}/completion")
        refuse(page, answer)
        if answer.ok:
            position = answer.headers.get("log-position") or position
            query = urlencode({"done": "survey", **({"at": position} if position else {})})
            return redirect(f"/console/tasks/households/{household_id}?{query}#survey")
        for field, reasons in tf.problems_of(answer.status, answer.problem).items():
            target = "q-" + field.removeprefix("answers.") if field.startswith("answers.") else ""
            said = [tf.reason_text(r, page.t) for r in reasons]
            if target:
                problems.setdefault(target, []).extend(said)
            else:
                above.extend(said)
    if problems or above:
        return await survey_page(
            page,
            household_id,
            at=int(position) if position else None,
            values=typed,
            problems=problems,
            above=[
                page.t(
                    N_("Some answers need correcting: each problem is shown beside its question.")
                ),
                *above,
            ],
            status=422,
        )
    query = urlencode({"done": "answers", **({"at": position} if position else {})})
    return redirect(f"/console/tasks/households/{household_id}/survey?{query}")
