"""The registry's commands and queries over HTTP, each with its rejections."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from domain.registry import person_id_for
from tests.e2e.conftest import RunningService
from tests.e2e.test_households_over_http import get_when_projected
from tests.support import household_body, random_fin, wait_until


def register(client: httpx.Client, *fins: str, **changes: Any) -> str:
    body = household_body(*fins)
    body.update(changes)
    response = client.post("/api/v1/households", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["household_id"])


def projected(client: httpx.Client, household_id: str, check: Any) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        household = get_when_projected(client, household_id)
        return household if check(household) else None

    return wait_until(ready, timeout_s=30, what="the read model to show the change")


def person(first: str, last: str, fin: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "fin": fin or random_fin(),
        "first_name": first,
        "last_name": last,
        "birth_date": "2026-01-15",
        "sex": "female",
        "relationship": "child",
        **extra,
    }


def test_members_join_and_leave_and_the_head_changes(service_with_kafka: RunningService) -> None:
    head, spouse = random_fin(), random_fin()
    with service_with_kafka.client() as client:
        household_id = register(client, head, spouse)
        baby = person("Leyla", "Məmmədova")
        added = client.post(
            f"/api/v1/households/{household_id}/members", json={**baby, "reason": "birth"}
        )
        assert added.status_code == 201, added.text
        assert (
            client.post(
                f"/api/v1/households/{household_id}/members", json={**baby, "reason": "birth"}
            ).status_code
            == 409
        )
        bad = client.post(
            f"/api/v1/households/{household_id}/members",
            json={**person("A", "B"), "reason": "stork"},
        )
        assert bad.status_code == 422 and bad.json()["field"] == "reason"
        projected(client, household_id, lambda h: len(h["members"]) == 3)

        head_id = str(person_id_for(head))
        refused = client.post(
            f"/api/v1/households/{household_id}/members/{head_id}/removal",
            json={"reason": "moved_out"},
        )
        assert refused.status_code == 409
        changed = client.post(
            f"/api/v1/households/{household_id}/head",
            json={
                "head_person_id": str(person_id_for(spouse)),
                "former_head_relationship": "spouse",
                "reason": "head works abroad",
            },
        )
        assert changed.status_code == 200, changed.text
        removed = client.post(
            f"/api/v1/households/{household_id}/members/{head_id}/removal",
            json={"reason": "moved_out", "note": "abroad"},
        )
        assert removed.status_code == 200, removed.text
        household = projected(client, household_id, lambda h: len(h["members"]) == 2)
    assert household["head_person_id"] == str(person_id_for(spouse))
    assert {(m["fin"], m["relationship"]) for m in household["members"]} == {
        (spouse, "head"),
        (baby["fin"], "child"),
    }


def test_a_household_splits_into_a_new_one(service_with_kafka: RunningService) -> None:
    head, son, daughter_in_law = random_fin(), random_fin(), random_fin()
    with service_with_kafka.client() as client:
        household_id = register(client, head, son, daughter_in_law)
        son_id, dil_id = str(person_id_for(son)), str(person_id_for(daughter_in_law))
        bad = client.post(
            f"/api/v1/households/{household_id}/split",
            json={
                "head_person_id": son_id,
                "relationships": {son_id: "head"},
                "current_address": "",
                "reason": "x",
            },
        )
        assert bad.status_code == 422 and bad.json()["field"] == "current_address"
        split = client.post(
            f"/api/v1/households/{household_id}/split",
            json={
                "head_person_id": son_id,
                "relationships": {son_id: "head", dil_id: "spouse"},
                "current_address": "Sumqayıt, 5-ci mkr",
                "reason": "the son married and lives apart",
            },
        )
        assert split.status_code == 201, split.text
        new_id = split.json()["household_id"]
        new = projected(client, new_id, lambda h: len(h["members"]) == 2)
        old = projected(client, household_id, lambda h: len(h["members"]) == 1)
        moved = wait_until(
            lambda: (
                (p := client.get(f"/api/v1/persons/{son}").json()).get("household_id") == new_id
                and p
            ),
            what="the person to move",
        )
    assert (
        new["head_person_id"] == son_id
        and new["origin_settlement_code"] == old["origin_settlement_code"]
    )
    assert new["split_from"] == household_id
    assert moved["fin"] == son


def test_housing_condition_and_vulnerabilities_are_recorded_and_searchable(
    service_with_kafka: RunningService,
) -> None:
    head = random_fin()
    with service_with_kafka.client() as client:
        household_id = register(client, head, origin_settlement_code="LAC-003")
        base = f"/api/v1/households/{household_id}"
        assert (
            client.post(f"{base}/housing-condition", json={"condition": "sanatorium"}).status_code
            == 200
        )
        assert (
            client.post(f"{base}/housing-condition", json={"condition": "palace"}).status_code
            == 422
        )
        assert (
            client.post(
                f"{base}/vulnerabilities", json={"vulnerability": "martyr_family"}
            ).status_code
            == 200
        )
        assert (
            client.post(
                f"{base}/vulnerabilities",
                json={"vulnerability": "disability", "person_id": str(person_id_for(head))},
            ).status_code
            == 200
        )
        assert (
            client.post(
                f"{base}/vulnerabilities", json={"vulnerability": "martyr_family"}
            ).status_code
            == 409
        )
        assert (
            client.post(
                f"{base}/vulnerabilities/clearance",
                json={
                    "vulnerability": "disability",
                    "person_id": str(person_id_for(head)),
                    "reason": "recovered",
                },
            ).status_code
            == 200
        )
        household = projected(
            client, household_id, lambda h: h["vulnerabilities"] == ["martyr_family"]
        )
        assert household["housing_condition"] == "sanatorium"
        found = client.get(
            "/api/v1/households",
            params={
                "housing_condition": "sanatorium",
                "vulnerability": "martyr_family",
                "origin_district": "LAC",
            },
        ).json()["items"]
        assert household_id in [h["household_id"] for h in found]
        assert (
            client.get("/api/v1/households", params={"fin": head}).json()["items"][0][
                "household_id"
            ]
            == household_id
        )


def test_a_detail_is_corrected_with_a_reason_and_the_old_value_stays_in_the_history(
    service_with_kafka: RunningService,
) -> None:
    head = random_fin()
    with service_with_kafka.client() as client:
        household_id = register(client, head)
        url = f"/api/v1/persons/{head}/corrections"
        assert (
            client.post(
                url, json={"field": "last_name", "new_value": "Hüseynova", "reason": ""}
            ).json()["field"]
            == "reason"
        )
        assert (
            client.post(url, json={"field": "nickname", "new_value": "x", "reason": "typo"}).json()[
                "field"
            ]
            == "field"
        )
        assert (
            client.post(
                url, json={"field": "birth_date", "new_value": "1990-13-01", "reason": "typo"}
            ).json()["field"]
            == "new_value"
        )
        corrected = client.post(
            url,
            json={
                "field": "last_name",
                "new_value": "Hüseynova",
                "reason": "typo at registration",
                "document_reference": "ID card AZE 1234",
            },
        )
        assert corrected.status_code == 200, corrected.text
        assert (
            client.post(
                f"/api/v1/persons/{random_fin()}/corrections",
                json={"field": "sex", "new_value": "male", "reason": "x"},
            ).status_code
            == 404
        )
        wait_until(
            lambda: client.get(f"/api/v1/persons/{head}").json().get("last_name") == "Hüseynova",
            what="correction projected",
        )
    with service_with_kafka.client("auditor") as auditor:
        history = auditor.get(f"/api/v1/audit/households/{household_id}/history").json()["events"]
    (correction,) = [e for e in history if e["event_type"].endswith("PersonDetailCorrected")]
    assert correction["data"]["old_value"] == "Məmmədova"
    assert correction["data"]["new_value"] == "Hüseynova"
    assert correction["reason"] == "typo at registration"


def test_idp_status_is_granted_and_ended_and_a_death_recorded(
    service_with_kafka: RunningService,
) -> None:
    head = random_fin()
    with service_with_kafka.client() as client:
        register(client, head)
        grant = {
            "basis": "Law 669-IQ, art. 1",
            "effective_date": "2023-04-01",
            "certificate_number": "IDP-7001",
        }
        assert (
            client.post(f"/api/v1/persons/{head}/idp-status/grant", json=grant).json()["idp_status"]
            == "active"
        )
        assert (
            client.post(f"/api/v1/persons/{head}/idp-status/grant", json=grant).status_code == 409
        )
        future = {"basis": "b", "effective_date": "2999-01-01", "reason": "r"}
        assert (
            client.post(f"/api/v1/persons/{head}/idp-status/end", json=future).json()["field"]
            == "effective_date"
        )
        ended = client.post(
            f"/api/v1/persons/{head}/idp-status/end",
            json={
                "basis": "Resolution 65",
                "effective_date": "2025-06-01",
                "reason": "returned to Aghali",
            },
        )
        assert ended.json()["idp_status"] == "ended"
        assert (
            client.post(
                f"/api/v1/persons/{head}/idp-status/end",
                json={"basis": "b", "effective_date": "2025-06-02", "reason": "r"},
            ).status_code
            == 409
        )
        assert (
            client.post(
                f"/api/v1/persons/{head}/death", json={"date_of_death": "2999-01-01"}
            ).json()["field"]
            == "date_of_death"
        )
        assert (
            client.post(
                f"/api/v1/persons/{head}/death", json={"date_of_death": "2026-02-01"}
            ).status_code
            == 200
        )
        assert (
            client.post(
                f"/api/v1/persons/{head}/death", json={"date_of_death": "2026-02-01"}
            ).status_code
            == 409
        )
        shown = wait_until(
            lambda: (p := client.get(f"/api/v1/persons/{head}").json()).get("date_of_death") and p,
            what="death projected",
        )
    assert shown["idp_status"] == "ended"
    assert shown["idp_certificate_number"] == "IDP-7001"


def test_a_status_reference_is_verified_by_an_integration_client(
    service_with_kafka: RunningService,
) -> None:
    head = random_fin()
    with service_with_kafka.client() as client:
        household_id = register(client, head)
        client.post(
            f"/api/v1/persons/{head}/idp-status/grant",
            json={
                "basis": "Law 669-IQ",
                "effective_date": "2020-01-01",
                "certificate_number": "IDP-1",
            },
        )
        issued = client.post(f"/api/v1/persons/{head}/status-references")
        assert issued.status_code == 201, issued.text
        reference = issued.json()
    assert reference["status"] == "active" and reference["certificate_number"] == "IDP-1"
    with service_with_kafka.client("integration") as portal:

        def verified() -> dict[str, Any] | None:
            code = reference["verification_code"]
            answer = portal.get(f"/api/v1/status-references/{code}", params={"fin": head}).json()
            return answer if answer["valid"] else None

        answer = wait_until(verified, what="the reference to verify")
        assert answer["status"] == "active" and answer["household_id"] == household_id
        forged = portal.get(
            f"/api/v1/status-references/{reference['verification_code']}",
            params={"fin": random_fin()},
        )
        assert forged.json() == {"valid": False}
        assert portal.post(f"/api/v1/persons/{head}/status-references").status_code == 403


def test_name_search_folds_azerbaijani_letters_correctly(
    service_with_kafka: RunningService,
) -> None:
    tag = random_fin().lower()[:4]
    names = {
        "İsmayılova": random_fin(),
        "Işıqlı": random_fin(),
        "Əliyeva": random_fin(),
        "Şükürova": random_fin(),
    }
    with service_with_kafka.client() as client:
        for last_name, fin in names.items():
            body = household_body(fin)
            body["members"][0]["last_name"] = last_name
            body["members"][0]["first_name"] = f"Ad{tag}"
            assert client.post("/api/v1/households", json=body).status_code == 201

        def found(prefix: str) -> set[str]:
            items = client.get(
                "/api/v1/persons", params={"name_prefix": prefix, "limit": 500}
            ).json()["items"]
            return {p["last_name"] for p in items if p["first_name"] == f"Ad{tag}"}

        wait_until(lambda: len(found("")) == 4, what="all four projected")
        assert found("ism") == {"İsmayılova"}
        assert found("İSMAYIL") == {"İsmayılova"}
        assert found("ışı") == {"Işıqlı"}
        assert found("IŞIQ") == {"Işıqlı"}
        assert found("isi") == set()  # i and ı are different letters
        assert found("ƏLİ") == {"Əliyeva"}
        assert found("şükür") == {"Şükürova"}
        page = client.get("/api/v1/persons", params={"name_prefix": "", "limit": 2}).json()
        assert len(page["items"]) == 2 and page["next_offset"] == 2
        assert "total" not in page  # counted only when asked

        counted = client.get(
            "/api/v1/persons", params={"name_prefix": "ism", "limit": 1, "total": "true"}
        ).json()
        households = client.get(
            "/api/v1/households", params={"name_prefix": "ism", "limit": 1, "total": "true"}
        ).json()
    with psycopg.connect(str(service_with_kafka.database_url)) as conn:
        held = conn.execute(
            "SELECT count(*), count(DISTINCT household_id) FROM projection_households.rm_persons "
            "WHERE search_name LIKE 'ism%%'"
        ).fetchone()
    assert held is not None and held[0] >= 1
    assert counted["total"] == held[0]  # what the store holds, not what one page showed
    assert households["total"] == held[1]
    assert counted["next_offset"] == (1 if held[0] > 1 else None)


def test_concurrent_conflicting_updates_get_409_and_one_change_is_kept(
    service_with_kafka: RunningService,
) -> None:
    import threading

    with service_with_kafka.client() as client:
        household_id = register(client, random_fin())
    outcomes: list[tuple[int, str]] = []
    for _ in range(6):
        barrier = threading.Barrier(2)

        def update(condition: str, barrier: threading.Barrier = barrier) -> None:
            with service_with_kafka.client() as client:
                barrier.wait()
                response = client.post(
                    f"/api/v1/households/{household_id}/housing-condition",
                    json={"condition": condition},
                )
                outcomes.append((response.status_code, condition))

        threads = [threading.Thread(target=update, args=(c,)) for c in ("dormitory", "sanatorium")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = {status for status, _ in outcomes}
    assert statuses <= {200, 409}, outcomes
    # Every refusal is a 409 problem; whatever won last is what the case now says.
    with service_with_kafka.client("auditor") as auditor:
        history = auditor.get(f"/api/v1/audit/households/{household_id}/history").json()["events"]
    recorded = [
        e["data"]["condition"]
        for e in history
        if e["event_type"].endswith("HousingConditionRecorded")
    ]
    assert len(recorded) == sum(1 for status, _ in outcomes if status == 200)
