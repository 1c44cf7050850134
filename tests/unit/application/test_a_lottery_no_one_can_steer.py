"""The lottery, tried as an insider would try it: no commitment serves twice, no single party
can choose the seed, a wrong reveal is refused, a withheld reveal voids the round (the others
never redraw), and the published result re-runs with the standalone script, which finds a
one-byte change."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from application.services import Services
from domain.base import ValidationFailed, acting_as
from domain.housing import (
    Commitment,
    HousingStateError,
    PublicRandomness,
    commitment_id,
    pseudonym,
    round_id,
)
from tests.lottery import PARTICIPANTS, fresh, now, reveal_all
from tests.support import ROOT
from tests.unit.application.conftest import (
    AGHALI,
    SUPERVISOR,
    approved_rule_set,
    eligible_family,
)
from tests.unit.application.test_housing_service import settlement_with_units

RERUN = ROOT / "tools" / "rerun_lottery.py"


@pytest.fixture
def ready(services: Services) -> Services:
    """Aghali open with five units, seven eligible families."""
    approved_rule_set(services)
    for size in (2, 3, 4, 5, 3, 6, 2):
        eligible_family(services, size=size)
    settlement_with_units(services, [3, 3, 4, 2, 3])
    return services


def drawn_round(services: Services, **announce: Any) -> tuple[Any, Any]:
    participants = fresh()
    with acting_as(SUPERVISOR):
        services.housing.announce_round(AGHALI, participants.commitments, **announce)
        reveal_all(services.housing, AGHALI, 1, participants)
        return participants, services.housing.draw_round(AGHALI, 1, "", "Public Council observers")


def test_a_commitment_used_by_any_earlier_round_is_refused(ready: Services) -> None:
    participants, drawn = drawn_round(ready)
    for household in [a.household_id for a in drawn.assignments]:  # the round's offers answered
        with acting_as(SUPERVISOR):
            ready.relocation.decline_offer(household, "location", None)
    reused = [participants.commitments[0], fresh().commitments[1]]
    with acting_as(SUPERVISOR), pytest.raises(HousingStateError, match="used by an earlier round"):
        ready.housing.announce_round(AGHALI, reused)
    # Recorded once, under its own id, whatever the settlement: no round anywhere reuses it.
    assert all(ready.store.exists(commitment_id(c.commitment)) for c in participants.commitments)


def test_one_party_alone_cannot_announce_and_nobody_draws_without_every_reveal(
    ready: Services,
) -> None:
    alone = fresh("Committee representative")
    with acting_as(SUPERVISOR), pytest.raises(ValidationFailed) as refused:
        ready.housing.announce_round(AGHALI, alone.commitments)
    assert refused.value.field == "participants"
    twice = fresh("Public Council", "public council")
    with acting_as(SUPERVISOR), pytest.raises(ValidationFailed, match="named twice"):
        ready.housing.announce_round(AGHALI, twice.commitments)
    participants = fresh()
    first = participants.reveals[0]
    with acting_as(SUPERVISOR):
        ready.housing.announce_round(AGHALI, participants.commitments)
        ready.housing.reveal(AGHALI, 1, first.participant, first.contribution)
        with pytest.raises(HousingStateError, match="Committee representative did not reveal"):
            ready.housing.draw_round(AGHALI, 1, "", "observers")
        with pytest.raises(HousingStateError, match="revealed already"):
            ready.housing.reveal(AGHALI, 1, first.participant, first.contribution)
    assert ready.housing.get_round(AGHALI, 1).seed is None


def test_a_reveal_that_does_not_match_its_commitment_is_refused(ready: Services) -> None:
    participants = fresh()
    with acting_as(SUPERVISOR):
        ready.housing.announce_round(AGHALI, participants.commitments)
        with pytest.raises(ValidationFailed) as refused:
            ready.housing.reveal(
                AGHALI, 1, PARTICIPANTS[1], "a secret chosen only now, never before"
            )
        with pytest.raises(ValidationFailed, match="not a participant"):
            ready.housing.reveal(AGHALI, 1, "Somebody else", participants.reveals[0].contribution)
        with pytest.raises(ValidationFailed, match="32 to"):
            ready.housing.reveal(AGHALI, 1, PARTICIPANTS[0], "short")
    assert refused.value.field == "contribution"
    assert "does not match the commitment" in refused.value.errors[0].reason
    assert ready.housing.get_round(AGHALI, 1).revealed == {}


def test_a_withheld_reveal_voids_the_round_and_the_next_is_announced_afresh(
    ready: Services,
) -> None:
    participants = fresh()
    first = participants.reveals[0]
    with acting_as(SUPERVISOR):
        ready.housing.announce_round(AGHALI, participants.commitments)
        ready.housing.reveal(AGHALI, 1, first.participant, first.contribution)
        with pytest.raises(ValidationFailed, match="exactly the participants who did not"):
            ready.housing.void_round(AGHALI, 1, [], "no reason to void")
        with pytest.raises(ValidationFailed, match="exactly the participants who did not"):
            ready.housing.void_round(AGHALI, 1, [PARTICIPANTS[0]], "the one who revealed")
        voided = ready.housing.void_round(
            AGHALI, 1, [PARTICIPANTS[1]], "the committee's representative did not reveal"
        )
        assert voided.voided == {
            "withheld_by": [PARTICIPANTS[1]],
            "reason": "the committee's representative did not reveal",
        }
        with pytest.raises(HousingStateError, match="voided"):
            ready.housing.draw_round(AGHALI, 1, "", "observers")
        with pytest.raises(HousingStateError, match="used by an earlier round"):
            ready.housing.announce_round(AGHALI, participants.commitments)  # not a redraw
        again = fresh()
        second = ready.housing.announce_round(AGHALI, again.commitments)
        reveal_all(ready.housing, AGHALI, 2, again)
        with pytest.raises(HousingStateError, match="drawn, not voided"):  # no re-roll
            ready.housing.void_round(AGHALI, 2, [], "a result we would rather not have")
        drawn = ready.housing.draw_round(AGHALI, 2, "", "observers")
    assert second.round_number == 2 and drawn.seed is not None and drawn.assignments
    assert ready.housing.get_round(AGHALI, 1).closed


def test_a_public_value_must_be_still_unknown_at_the_announcement_and_known_at_the_draw(
    ready: Services,
) -> None:
    participants = fresh()
    soon = now() + timedelta(minutes=10)
    later = soon + timedelta(seconds=1)
    value = "5ad2a4c1e0" * 6 + "abcd"  # drand: 64 lowercase hex digits
    with acting_as(SUPERVISOR):
        with pytest.raises(ValidationFailed, match="after the announcement"):
            ready.housing.announce_round(
                AGHALI,
                participants.commitments,
                PublicRandomness("drand-quicknet", "round 1", now() - timedelta(minutes=1)),
            )
        with pytest.raises(ValidationFailed, match="one of"):
            ready.housing.announce_round(
                AGHALI, participants.commitments, PublicRandomness("my-own-dice", "1", soon)
            )
        ready.housing.announce_round(
            AGHALI, participants.commitments, PublicRandomness("drand-quicknet", "1234567", soon)
        )
        first, second = participants.reveals
        ready.housing.reveal(AGHALI, 1, first.participant, first.contribution)
        with pytest.raises(HousingStateError, match="reveals are due until"):
            ready.housing.void_round(AGHALI, 1, [second.participant], "impatient")
        ready.housing.reveal(AGHALI, 1, second.participant, second.contribution)
        with pytest.raises(HousingStateError, match="draw after it"):
            ready.housing.draw_round(AGHALI, 1, value, "observers")
        with pytest.raises(ValidationFailed, match="canonical spelling"):
            ready.housing.draw_round(AGHALI, 1, value.upper(), "observers", later)
        drawn = ready.housing.draw_round(AGHALI, 1, value, "observers", later)
    assert drawn.public_value == value
    assert ready.audit.rerun_lottery(AGHALI, 1).matches


def test_a_reveal_after_the_public_value_is_refused_and_the_round_voided(
    ready: Services,
) -> None:
    """A participant who waits for the public value could compute the result and choose
    whether to reveal: a reveal is accepted only before it is published."""
    participants = fresh()
    soon = now() + timedelta(seconds=1)
    first, second = participants.reveals
    with acting_as(SUPERVISOR):
        ready.housing.announce_round(
            AGHALI, participants.commitments, PublicRandomness("state-lottery", "2026-12-01", soon)
        )
        ready.housing.reveal(AGHALI, 1, first.participant, first.contribution)
        round_ = ready.housing.get_round(AGHALI, 1)
        with pytest.raises(HousingStateError, match="can only be voided"):
            round_.reveal(second.participant, second.contribution, soon)
        voided = ready.housing.void_round(
            AGHALI, 1, [second.participant], "withheld", soon + timedelta(seconds=1)
        )
    assert voided.voided == {"withheld_by": [second.participant], "reason": "withheld"}


def run(document: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "round.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(RERUN), str(path), *args], capture_output=True, text=True
    )


def test_the_published_result_re_runs_with_the_standalone_script(
    ready: Services, tmp_path: Path
) -> None:
    _, drawn = drawn_round(ready)
    document = ready.housing.published_round(AGHALI, 1)
    assert ready.audit.rerun_lottery(AGHALI, 1).matches
    entrants = document["announcement"]["entrants"]
    assert {e["id"] for e in entrants} == {e.pseudonym for e in drawn.entrants}
    assert all("household" not in json.dumps(e) for e in entrants)  # pseudonyms only
    done = run(document, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "matches" in done.stdout and "2 reveals match their commitments" in done.stdout

    family = drawn.assignments[0].household_id
    own = pseudonym(drawn.id, family)
    line = run(document, tmp_path, "--entrant", own)
    assert line.returncode == 0
    assert f"{own}: priority group" in line.stdout and "drawn unit" in line.stdout


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a score", lambda d: d["announcement"]["entrants"][0].update(score=99.5)),
        (
            "a priority group's name",
            lambda d: _flip(d["announcement"]["entrants"][1], "priority_group"),
        ),
        ("a unit id", lambda d: _flip(d["announcement"]["units"][0], "unit_id")),
        ("a reveal", lambda d: _flip(d["result"]["contributions"][0], "contribution")),
        (
            "a participant's name",
            lambda d: _flip(d["announcement"]["commitments"][1], "participant"),
        ),
        ("an assignment", lambda d: _flip(d["result"]["assignments"][0], "unit_id")),
        ("the public value", lambda d: d["result"].update(public_value="x")),
    ],
)
def test_the_standalone_script_finds_a_one_byte_change(
    ready: Services, tmp_path: Path, where: str, change: Any
) -> None:
    drawn_round(ready)
    document = ready.housing.published_round(AGHALI, 1)
    change(document)
    done = run(document, tmp_path)
    assert done.returncode == 1, where
    assert "does NOT match" in done.stderr and "MISMATCH" in done.stderr


def _flip(record: dict[str, Any], key: str) -> None:
    """Change one character of a text field (the last; a digit or letter stays one)."""
    value = record[key]
    last = value[-1]
    record[key] = value[:-1] + ("0" if last != "0" else "1")


def test_commitments_of_two_participants_recorded_with_the_round() -> None:
    """The commitments enter the announcement's digest, in order: swapping them changes it."""
    from domain.housing import announcement_document, digest

    a, b = Commitment("A", "sha256:" + "1" * 64), Commitment("B", "sha256:" + "2" * 64)
    one = announcement_document("ZAN-002", 1, round_id("ZAN-002", 1), [a, b], None, [], [], "x", 1)
    two = announcement_document("ZAN-002", 1, round_id("ZAN-002", 1), [b, a], None, [], [], "x", 1)
    assert digest(one) != digest(two)


def test_the_standalone_script_refuses_a_key_given_twice(ready: Services, tmp_path: Path) -> None:
    """Two readers could read ``{"id": A, "id": B}`` differently: refused, not guessed."""
    _, drawn = drawn_round(ready)
    text = json.dumps(ready.housing.published_round(AGHALI, 1), indent=2)
    first = drawn.assignments[0]
    own = f'"id": "{pseudonym(drawn.id, first.household_id)}"'
    assert own in text
    path = tmp_path / "round.json"
    path.write_text(text.replace(own, '"id": "someone else", ' + own, 1), encoding="utf-8")
    done = subprocess.run([sys.executable, str(RERUN), str(path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "appears twice" in done.stderr
