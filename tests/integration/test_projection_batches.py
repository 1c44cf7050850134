"""A projection batch applies runs of events at once with the same rows as applying each event
in turn: the same version guards, redeliveries and stale events included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from infra.projection_admin import PROJECTIONS
from projections import runner
from projections.runner import Delivery

HOUSEHOLDS = PROJECTIONS["households"]
RESPONSES = [uuid.UUID(int=i + 1) for i in range(3)]
QUESTIONS = ["q1", "q2", "q3"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def message(schema_name: str, response: uuid.UUID, version: int, **fields: Any) -> bytes:
    record = {
        "event_id": uuid.uuid4(),
        "occurred_at": START + timedelta(minutes=version),
        "actor_id": "tester",
        "actor_role": "operator",
        "correlation_id": "c",
        "causation_id": "c",
        "aggregate_id": response,
        "aggregate_version": version,
        "case_id": response,
        "household_id": response,
        **fields,
    }
    return schemas.encode(schema_name, record)


def response_history(response: uuid.UUID, answers: list[tuple[int, int]]) -> list[bytes]:
    """Started (version 1), an answer per entry (question, value), completed."""
    out = [
        message(
            "reintegration.surveys.SurveyStarted",
            response,
            1,
            questionnaire_id=response,
            questionnaire_code="pre-return",
            questionnaire_version=1,
        )
    ]
    for version, (question, value) in enumerate(answers, start=2):
        out.append(
            message(
                "reintegration.surveys.SurveyQuestionAnswered",
                response,
                version,
                question_id=QUESTIONS[question],
                value=f'{{"v": {value}}}',
            )
        )
    out.append(
        message(
            "reintegration.surveys.SurveyCompleted",
            response,
            len(answers) + 2,
            answered=len(answers),
        )
    )
    return out


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """Each response's events in order, interleaved; some delivered again later (as after a
    crash before the offsets were stored), some out of place (stale)."""
    histories = [
        response_history(
            r,
            draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 9)), max_size=8)),
        )
        for r in RESPONSES[: draw(st.integers(1, 3))]
    ]
    stream: list[bytes] = []
    while any(histories):
        pick = draw(st.sampled_from([h for h in histories if h]))
        stream.append(pick.pop(0))
    for _ in range(draw(st.integers(0, 6))):
        again = draw(st.sampled_from(stream))
        stream.insert(draw(st.integers(0, len(stream))), again)
    return stream


def view(conn: psycopg.Connection[Any], schema: str) -> tuple[list[Any], list[Any]]:
    conn.execute(f"SET search_path TO {schema}")
    responses = conn.execute("SELECT * FROM rm_survey_responses ORDER BY response_id").fetchall()
    answers = conn.execute(
        "SELECT * FROM rm_survey_answers ORDER BY response_id, question_id"
    ).fetchall()
    return responses, answers


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=streams(), chunk=st.integers(1, 12))
def test_runs_of_answers_applied_at_once_leave_the_rows_that_one_at_a_time_leaves(
    database_url: str, stream: list[bytes], chunk: int
) -> None:
    with one_at_a_time_and_in_runs(database_url, stream, chunk) as (conn, one, many):
        assert view(conn, many) == view(conn, one)
        assert view(conn, one)[1] or not any(b"Answered" in m for m in stream)


@contextmanager
def one_at_a_time_and_in_runs(
    database_url: str, stream: list[bytes], chunk: int
) -> Iterator[tuple[psycopg.Connection[Any], str, str]]:
    """The stream applied into two fresh schemas: one event at a time (the first), and in
    poll batches of ``chunk`` messages in pipeline mode, as the runner does (the second)."""
    one, many = f"p1_{uuid.uuid4().hex[:8]}", f"pn_{uuid.uuid4().hex[:8]}"
    runner.prepare(database_url, HOUSEHOLDS, one)
    runner.prepare(database_url, HOUSEHOLDS, many)
    deliveries = [Delivery("t", 0, offset, value) for offset, value in enumerate(stream)]
    with psycopg.connect(database_url) as conn:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(f"SET LOCAL search_path TO {one}")
            for d in deliveries:
                runner.apply_one(cur, HOUSEHOLDS, d)
        for start in range(0, len(deliveries), chunk):  # poll batches, in pipeline mode
            with conn.transaction(), conn.cursor() as cur, conn.pipeline():
                cur.execute(f"SET LOCAL search_path TO {many}")
                runner.apply_all(cur, HOUSEHOLDS, deliveries[start : start + chunk])
        yield conn, one, many


def test_a_batch_of_answers_skips_those_at_or_below_the_stored_version(database_url: str) -> None:
    schema = f"pb_{uuid.uuid4().hex[:8]}"
    runner.prepare(database_url, HOUSEHOLDS, schema)
    response = RESPONSES[0]
    history = response_history(response, [(0, 1), (0, 2), (1, 3)])
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"SET search_path TO {schema}")
        first = [Delivery("t", 0, i, v) for i, v in enumerate(history[:3])]  # started, q1=1, q1=2
        runner.apply_all(cur, HOUSEHOLDS, first)
        again = [Delivery("t", 0, i, v) for i, v in enumerate(history[1:4])]  # q1=1 stale, q2=3
        runner.apply_all(cur, HOUSEHOLDS, again)
        _, answers = view(conn, schema)
    assert [(a[1], a[2]) for a in answers] == [
        ("q1", {"v": 2}),
        ("q2", {"v": 3}),
    ]  # id, question, value


HOUSEHOLD_IDS = [uuid.UUID(int=100 + i) for i in range(2)]
PERSON_IDS = [uuid.UUID(int=200 + i) for i in range(4)]  # two in each household


def registry_event(
    schema_name: str, aggregate: uuid.UUID, version: int, case: uuid.UUID, **fields: Any
) -> bytes:
    return message(schema_name, aggregate, version, case_id=case, household_id=case, **fields)


def person_history(person: uuid.UUID, household: uuid.UUID, steps: list[int]) -> list[bytes]:
    """Registered, then each step (version 2 on): IDP status granted (batched), ended (one at
    a time) or a move to the other household (one at a time)."""
    n = PERSON_IDS.index(person)
    out = [
        registry_event(
            "reintegration.registry.PersonRegistered",
            person,
            1,
            household,
            fin=f"FIN{n:04d}",
            first_name=f"Ad{n}",
            last_name="Soyad",
            patronymic=None if n % 2 else "Ata oğlu",
            birth_date=date(1980 + n, 1, 1),
            sex="female",
            idp_certificate_number=None,
            origin_settlement_code="ZAN-002",
            registered_address=None,
        )
    ]
    for version, step in enumerate(steps, start=2):
        common = {
            "basis": "law",
            "effective_date": date(2026, 1, version),
            "home_household_id": household,
        }
        if step == 0:
            out.append(
                registry_event(
                    "reintegration.registry.IdpStatusGranted",
                    person,
                    version,
                    household,
                    certificate_number=f"C{version}",
                    **common,
                )
            )
        elif step == 1:
            out.append(
                registry_event(
                    "reintegration.registry.IdpStatusEnded",
                    person,
                    version,
                    household,
                    reason="returned",
                    **common,
                )
            )
        else:
            other = HOUSEHOLD_IDS[1 - HOUSEHOLD_IDS.index(household)]
            out.append(
                message(
                    "reintegration.registry.PersonMovedToHousehold",
                    person,
                    version,
                    case_id=household,
                    household_id=other,
                    from_household_id=household,
                    reason="marriage",
                    home_household_id=household,
                )
            )
    return out


def household_history(household: uuid.UUID, steps: list[int]) -> list[bytes]:
    """Registered with its two people, then each step: housing condition or circumstances
    (batched), a vulnerability recorded, or the second member leaving or coming back (one at a
    time)."""
    members = PERSON_IDS[2 * HOUSEHOLD_IDS.index(household) :][:2]
    out = [
        registry_event(
            "reintegration.registry.HouseholdRegistered",
            household,
            1,
            household,
            head_person_id=members[0],
            members=[
                {"person_id": p, "fin": f"FIN{PERSON_IDS.index(p):04d}", "relationship": r}
                for p, r in zip(members, ["head", "spouse"], strict=True)
            ],
            origin_settlement_code="ZAN-002",
            current_address="Bakı",
            contact_phone=None,
        )
    ]
    present = True  # the second member
    for version, step in enumerate(steps, start=2):
        if step == 0:
            out.append(
                registry_event(
                    "reintegration.registry.HousingConditionRecorded",
                    household,
                    version,
                    household,
                    condition=f"c{version}",
                    note=None,
                )
            )
        elif step == 1:
            out.append(
                registry_event(
                    "reintegration.registry.HouseholdCircumstancesVerified",
                    household,
                    version,
                    household,
                    living_at_registered_address=version % 2 == 0,
                    private_housing_after_displacement=False,
                    sham_marriage_or_divorce=False,
                    verified_on=date(2026, 2, version),
                    document_reference=f"D{version}",
                    note=None,
                )
            )
        elif step == 2:
            out.append(
                registry_event(
                    "reintegration.registry.VulnerabilityRecorded",
                    household,
                    version,
                    household,
                    vulnerability=f"v{version % 3}",
                    person_id=members[version % 2],
                    note=None,
                )
            )
        else:  # the second member leaves, or comes back
            spouse = {"person_id": members[1], "reason": "family"}
            present = not present
            out.append(
                registry_event(
                    "reintegration.registry.HouseholdMemberAdded",
                    household,
                    version,
                    household,
                    fin=f"FIN{PERSON_IDS.index(members[1]):04d}",
                    relationship="spouse",
                    **spouse,
                )
                if present
                else registry_event(
                    "reintegration.registry.HouseholdMemberRemoved",
                    household,
                    version,
                    household,
                    note=None,
                    **spouse,
                )
            )
    return out


@st.composite
def registry_streams(draw: st.DrawFn) -> list[bytes]:
    """Households and their people, each aggregate's events in order, interleaved; some
    delivered again later, some out of place."""
    steps = st.lists(st.integers(0, 2), max_size=5)
    histories = [
        household_history(h, draw(st.lists(st.integers(0, 3), max_size=6))) for h in HOUSEHOLD_IDS
    ] + [person_history(p, HOUSEHOLD_IDS[i // 2], draw(steps)) for i, p in enumerate(PERSON_IDS)]
    stream: list[bytes] = []
    while any(histories):
        pick = draw(st.sampled_from([h for h in histories if h]))
        stream.append(pick.pop(0))
    for _ in range(draw(st.integers(0, 6))):
        again = draw(st.sampled_from(stream))
        stream.insert(draw(st.integers(0, len(stream))), again)
    return stream


def registry_view(conn: psycopg.Connection[Any], schema: str) -> list[list[Any]]:
    conn.execute(f"SET search_path TO {schema}")
    return [
        conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        for table in (
            "rm_households",
            "rm_household_members",
            "rm_persons",
            "rm_household_vulnerabilities",
        )
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=registry_streams(), chunk=st.integers(1, 12))
def test_runs_of_registrations_and_changes_applied_at_once_leave_the_rows_that_one_at_a_time_leaves(
    database_url: str, stream: list[bytes], chunk: int
) -> None:
    with one_at_a_time_and_in_runs(database_url, stream, chunk) as (conn, one, many):
        assert registry_view(conn, many) == registry_view(conn, one)
        households, members, persons, _ = registry_view(conn, one)
        assert len(households) == 2 and len(members) >= 2 and len(persons) == 4


def test_a_registration_delivered_again_does_not_bring_back_a_member_who_left(
    database_url: str,
) -> None:
    schema = f"pr_{uuid.uuid4().hex[:8]}"
    runner.prepare(database_url, HOUSEHOLDS, schema)
    household = HOUSEHOLD_IDS[0]
    registered = household_history(household, [])[0]
    left = registry_event(
        "reintegration.registry.HouseholdMemberRemoved",
        household,
        2,
        household,
        person_id=PERSON_IDS[1],
        reason="moved out",
        note=None,
    )
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"SET search_path TO {schema}")
        for offset, value in enumerate([registered, left, registered]):
            runner.apply_one(cur, HOUSEHOLDS, Delivery("t", 0, offset, value))
        _, members, _, _ = registry_view(conn, schema)
    assert [m[1] for m in members] == [PERSON_IDS[0]]
