"""Pre-return surveys over HTTP: publish, answer, complete, correct, profile and statistics."""

from __future__ import annotations

from typing import Any

from domain.surveys import shipped_pre_return_questionnaire
from tests.e2e.conftest import RunningService
from tests.e2e.test_households_over_http import get_when_projected
from tests.e2e.test_registry_over_http import register
from tests.support import random_fin, wait_until


def publish(service: RunningService) -> None:
    with service.client("supervisor") as supervisor:
        published = supervisor.post(
            "/api/v1/questionnaires", json=shipped_pre_return_questionnaire()
        )
        assert published.status_code == 201, published.text
        again = supervisor.post("/api/v1/questionnaires", json=shipped_pre_return_questionnaire())
        assert again.status_code == 409 and again.json()["field"] == "version"


def survey(client: Any, household_id: str, answers: list[tuple[str, Any]]) -> str:
    started = client.post(
        f"/api/v1/households/{household_id}/surveys",
        json={"questionnaire_code": "pre-return", "questionnaire_version": 1},
    )
    assert started.status_code == 201, started.text
    response_id = started.json()["response_id"]
    for question_id, value in answers:
        answered = client.post(
            f"/api/v1/surveys/{response_id}/answers",
            json={"question_id": question_id, "value": value},
        )
        assert answered.status_code == 200, answered.text
    return str(response_id)


def test_only_supervisors_publish_questionnaires_and_bad_ones_are_refused(
    service_with_kafka: RunningService,
) -> None:
    data = shipped_pre_return_questionnaire()
    with service_with_kafka.client("operator") as operator:
        assert operator.post("/api/v1/questionnaires", json=data).status_code == 403
    with service_with_kafka.client("supervisor") as supervisor:
        broken = {**data, "version": 2, "questions": [{**data["questions"][0], "options": []}]}
        refused = supervisor.post("/api/v1/questionnaires", json=broken)
        assert refused.status_code == 422 and refused.json()["field"] == "questions[0].options"


def test_a_household_answers_the_pre_return_survey(service_with_kafka: RunningService) -> None:
    publish(service_with_kafka)
    with service_with_kafka.client() as client:
        household_id = register(
            client, random_fin(), random_fin(), origin_settlement_code="ZAN-002"
        )
        response_id = survey(client, household_id, [("intention", "within_12_months")])
        base = f"/api/v1/surveys/{response_id}"
        wrong_type = client.post(
            f"{base}/answers", json={"question_id": "school_children", "value": "two"}
        )
        assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "value"
        out_of_range = client.post(
            f"{base}/answers", json={"question_id": "school_children", "value": 99}
        )
        assert out_of_range.status_code == 422
        unknown_option = client.post(
            f"{base}/answers", json={"question_id": "obstacles", "value": ["dragons"]}
        )
        assert unknown_option.status_code == 422
        not_shown = client.post(
            f"{base}/answers", json={"question_id": "reasons_not_to_return", "value": ["jobs"]}
        )
        assert not_shown.status_code == 409
        unknown = client.post(
            f"{base}/answers", json={"question_id": "favourite_colour", "value": "red"}
        )
        assert unknown.status_code == 422 and unknown.json()["field"] == "question_id"
        incomplete = client.post(f"{base}/completion")
        assert incomplete.status_code == 422
        assert "answers.obstacles" in [e["field"] for e in incomplete.json()["errors"]]
        for question_id, value in [
            ("obstacles", ["housing", "jobs"]),
            ("employment_needed", "yes"),
            ("employment_count", 2),
            ("health_needs", "no"),
            ("school_children", 1),
        ]:
            assert (
                client.post(
                    f"{base}/answers", json={"question_id": question_id, "value": value}
                ).status_code
                == 200
            )
        assert client.post(f"{base}/completion").status_code == 200
        corrected = client.post(
            f"{base}/corrections",
            json={"question_id": "school_children", "value": 2, "reason": "twins"},
        )
        assert corrected.status_code == 200 and corrected.json()["answers"]["school_children"] == 2
        profile = wait_until(
            lambda: (
                (h := get_when_projected(client, household_id))["latest_survey"]
                and h["latest_survey"]["status"] == "completed"
                and h["latest_survey"]["answers"].get("school_children") == 2
                and h
            ),
            what="the survey in the household profile",
        )
        assert profile["latest_survey"]["answers"]["obstacles"] == ["housing", "jobs"]
        completed = client.get(
            "/api/v1/households",
            params={"survey_status": "completed", "fin": profile["members"][0]["fin"]},
        )
        assert [h["household_id"] for h in completed.json()["items"]] == [household_id]


def test_statistics_per_origin_settlement_and_district(service_with_kafka: RunningService) -> None:
    publish(service_with_kafka)
    common = [("obstacles", ["mines", "housing"]), ("health_needs", "no"), ("school_children", 0)]
    with service_with_kafka.client() as client:
        for origin, intention, jobs in [
            ("LAC-002", "now", 3),
            ("LAC-002", "within_5_years", None),
            ("LAC-003", "no", None),
        ]:
            household_id = register(client, random_fin(), origin_settlement_code=origin)
            answers = [("intention", intention), *common]
            if intention == "no":
                answers.append(("reasons_not_to_return", ["security"]))
            answers += (
                [("employment_needed", "yes"), ("employment_count", jobs)]
                if jobs
                else [("employment_needed", "no")]
            )
            response_id = survey(client, household_id, answers)
            assert client.post(f"/api/v1/surveys/{response_id}/completion").status_code == 200

        def stats(by: str) -> dict[str, Any] | None:
            rows = client.get("/api/v1/surveys/statistics", params={"by": by}).json()["origins"]
            found = {r["origin"]: r for r in rows}
            return found if sum(r["households"] for r in rows) == 3 else None

        by_settlement = wait_until(lambda: stats("settlement"), what="statistics")
        assert by_settlement["LAC-002"]["intention"] == {"now": 1, "within_5_years": 1}
        assert by_settlement["LAC-002"]["households_needing_jobs"] == 1
        assert float(by_settlement["LAC-002"]["persons_needing_jobs"]) == 3
        assert [o["obstacle"] for o in by_settlement["LAC-002"]["top_obstacles"]] == [
            "housing",
            "mines",
        ]
        by_district = stats("district")
        assert by_district is not None and by_district["LAC"]["households"] == 3
        assert client.get("/api/v1/surveys/statistics", params={"by": "planet"}).status_code == 422
