"""The reads the console's case page makes beyond the registry: a returned family's
reintegration follow-up, the case's timeline with who, in which role and what each event
recorded, and the auditor's re-run criterion by criterion."""

from __future__ import annotations

from tests.integration.test_access_by_role_and_scope import NATIONAL, PURPOSE, World, world

__all__ = ["world"]  # the module's fixture: the Great Return demonstration over the API


def test_a_returned_family_has_its_follow_up_and_a_family_still_waiting_has_none(
    world: World,
) -> None:
    auth = {"Authorization": f"Bearer {NATIONAL['operator']}"}
    returned = world.client.get(
        f"/api/v1/households/{world.zan['household_id']}/reintegration", headers=auth
    )
    assert returned.status_code == 200, returned.text
    follow_up = returned.json()
    assert follow_up["stage"] in ("residence_registered", "completed")
    assert follow_up["allowance_azn"] in (33, 60) and "unmet_criteria" in follow_up
    waiting = world.client.get(
        f"/api/v1/households/{world.lac['household_id']}/reintegration", headers=auth
    )
    assert waiting.status_code == 404


def test_the_timeline_says_who_in_which_role_and_what_each_event_recorded(world: World) -> None:
    auth = {"Authorization": f"Bearer {NATIONAL['operator']}"}
    lines = world.client.get(
        f"/api/v1/households/{world.zan['household_id']}/timeline", headers=auth
    ).json()
    first = lines[0]
    assert first["event"] == "HouseholdRegistered" and first["role"]
    assert first["aggregate"] == "Household" and first["data"]["members"]
    granted = next(line for line in lines if line["event"] == "IdpStatusGranted")
    assert granted["aggregate"] == "Person" and granted["data"]["effective_date"]
    decided = next(line for line in lines if line["event"] == "EligibilityDetermined")
    assert decided["data"]["result"] and "facts" not in decided["data"]


def test_a_re_run_compares_each_criterion_with_what_was_recorded(world: World) -> None:
    auth = {"Authorization": f"Bearer {NATIONAL['auditor']}", **PURPOSE}
    household = world.zan["household_id"]
    decision = world.client.get(f"/api/v1/households/{household}/eligibility", headers=auth)
    rerun = world.client.get(
        f"/api/v1/audit/decisions/{decision.json()['decision_id']}/rerun", headers=auth
    ).json()
    recorded = [o["criterion_id"] for o in decision.json()["outcomes"]]
    assert [c["criterion_id"] for c in rerun["criteria"]] == recorded
    assert rerun["matches"] and all(c["same"] for c in rerun["criteria"])


def test_the_case_history_over_http_is_byte_for_byte_what_the_generic_encoder_gave(
    world: World,
) -> None:
    """The route renders the history's plain JSON values as they are; the framework's generic
    encoder, which walked every value first, gave the very same bytes."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    auth = {"Authorization": f"Bearer {NATIONAL['auditor']}", **PURPOSE}
    for case in (world.zan, world.lac):
        household = case["household_id"]
        answer = world.client.get(f"/api/v1/audit/households/{household}/history", headers=auth)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        history = world.container.services.audit.history(household)
        assert answer.content == JSONResponse(jsonable_encoder(history)).body
        assert len(answer.json()["events"]) > 10
