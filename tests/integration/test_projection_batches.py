"""A projection batch applies runs of events at once with the same rows as applying each event
in turn: the same version guards, redeliveries and stale events included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
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
        assert view(conn, many) == view(conn, one)
        assert view(conn, one)[1] or not any(b"Answered" in m for m in stream)


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
