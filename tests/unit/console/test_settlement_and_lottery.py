"""The settlement and lottery pages' own logic: the pipeline in the order of the process, the
units table and chart, every status, stage, criterion and group named in words, and each
entrant's lot and place as the draw gives them."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from api.console.pager import Pager
from api.console.pages import lottery, settlement
from application.shipped import shipped_rule_set
from domain.housing import READINESS_ITEMS, Entrant, RoundUnit, draw
from domain.reintegration import IASC_CRITERIA
from domain.relocation import STAGES


def upper(message: str, **values: object) -> str:
    """A stand-in translation that shows it was applied."""
    return (message % values if values else message).upper()


def test_the_pipeline_is_in_the_order_of_the_process_with_every_stage_counted() -> None:
    rows = [
        {"stage": "completed", "households": 10},
        {"stage": "keys_handed_over", "households": 18},
        {"stage": "opened", "households": 8},
        {"stage": "lost_in_transit", "households": 1},
    ]

    found = settlement.pipeline_in_order(rows)

    assert [stage for stage, _ in found] == ["opened", *STAGES, "lost_in_transit"]
    assert dict(found) == dict.fromkeys(["opened", *STAGES], 0) | {
        "opened": 8,
        "keys_handed_over": 18,
        "completed": 10,
        "lost_in_transit": 1,
    }


def test_units_are_tabled_and_charted_by_status_in_order_and_by_rooms() -> None:
    units = {
        "totals": {"occupied": 11, "available": 189},
        "by_rooms": [
            {"status": "available", "rooms": 3, "units": 73},
            {"status": "available", "rooms": 4, "units": 116},
            {"status": "occupied", "rooms": 3, "units": 11},
        ],
    }

    rooms, rows = settlement.units_table(units)
    chart = settlement.units_chart(units, upper)

    assert rooms == [3, 4]
    assert [(r["status"], r["by_rooms"], r["total"]) for r in rows] == [
        ("available", [73, 116], 189),
        ("offered", [0, 0], 0),
        ("allocated", [0, 0], 0),
        ("occupied", [11, 0], 11),
    ]
    assert chart["labels"] == ["AVAILABLE", "OFFERED", "ALLOCATED", "OCCUPIED"]
    assert [(d["label"], d["data"]) for d in chart["datasets"]] == [
        ("3 ROOMS", [73, 0, 0, 11]),
        ("4 ROOMS", [116, 0, 0, 0]),
    ]
    assert chart["stacked"] is True


def test_every_value_the_pages_show_has_words_of_its_own() -> None:
    groups = {g["id"] for g in shipped_rule_set()["priority_groups"]}

    assert set(settlement.STAGE_LABELS) == {"opened", *STAGES}
    assert set(settlement.CRITERIA) == set(IASC_CRITERIA)
    assert set(settlement.READINESS) == set(READINESS_ITEMS)
    assert set(settlement.UNIT_STATUSES) == {"available", "offered", "allocated", "occupied"}
    assert set(lottery.GROUPS) == groups
    assert settlement.label(settlement.CRITERIA, "new_criterion") == "new criterion"


def test_each_entrant_gets_its_lot_and_its_place_as_the_draw_placed_it() -> None:
    seed = "ab" * 32
    entrants = [
        Entrant(uuid4(), uuid4(), "collective_centre", 1, float(i % 3), 3, f"p{i}")
        for i in range(5)
    ]
    units = [RoundUnit(uuid4(), 3) for _ in range(3)]
    assignments, reserve = draw(seed, entrants, units)
    alias = {e.household_id: e.pseudonym for e in entrants}
    document = {
        "announcement": {
            "entrants": [
                {
                    "id": e.pseudonym,
                    "priority_group": e.priority_group,
                    "priority_rank": e.priority_rank,
                    "score": e.score,
                    "rooms_entitled": e.rooms_entitled,
                }
                for e in entrants
            ],
            "commitments": [
                {"participant": "Council", "commitment": "sha256:aa", "signature": "c2ln"},
                {"participant": "Committee", "commitment": "sha256:bb", "signature": ""},
            ],
        },
        "result": {
            "seed": seed,
            "contributions": [{"participant": "Council", "contribution": "secret"}],
            "assignments": [
                {
                    "id": alias[a.household_id],
                    "unit_id": str(a.unit_id),
                    "rooms": 3,
                    "position": a.position,
                }
                for a in assignments
            ],
            "reserve": [
                {"id": alias[p.household_id], "rooms": 3, "position": p.position} for p in reserve
            ],
        },
    }

    rows = lottery.entrant_lots(document)
    placed = sorted(
        (r for r in rows if r["outcome"] == "assigned"), key=lambda r: r["position"]
    ) + sorted((r for r in rows if r["outcome"] == "reserve"), key=lambda r: r["position"])

    assert [r["id"] for r in rows] == [e.pseudonym for e in entrants]  # the announced order
    assert [r["outcome"] for r in placed] == ["assigned"] * 3 + ["reserve"] * 2
    # the draw's order is the one the page explains: rank, then score (higher first), then lot
    assert [r["id"] for r in placed] == [
        r["id"] for r in sorted(rows, key=lambda r: (r["priority_rank"], -r["score"], r["lot"]))
    ]
    assert lottery.commitments(document) == [
        {
            "participant": "Council",
            "commitment": "sha256:aa",
            "signed": True,
            "contribution": "secret",
        },
        {
            "participant": "Committee",
            "commitment": "sha256:bb",
            "signed": False,
            "contribution": None,
        },
    ]


def published(entrants: int) -> dict[str, Any]:
    """A drawn round of ``entrants`` families, the first two assigned and the next reserve."""
    ids = [f"{n:08d}-aaaa-bbbb-cccc-dddddddddddd" for n in range(entrants)]
    return {
        "announcement": {
            "entrants": [
                {"id": i, "priority_group": "other", "priority_rank": 4, "score": 0.0} for i in ids
            ]
        },
        "result": {
            "seed": "cd" * 32,
            "assignments": [{"id": i, "unit_id": "u", "rooms": 3, "position": 1} for i in ids[:2]],
            "reserve": [{"id": ids[2], "rooms": 3, "position": 1}],
        },
    }


def test_a_page_of_entrants_has_the_lots_and_places_the_whole_list_gives_them() -> None:
    document = published(250)
    whole = lottery.entrant_lots(document)
    pager = Pager.asked("/r", {"entrants": "2"}, "entrants", 100).of(len(whole))

    shown = lottery.entrant_lots(document, pager.rows(document["announcement"]["entrants"]))

    assert shown == whole[100:200]
    assert (pager.number, pager.pages, pager.total) == (2, 3, 250)


def test_an_entrant_is_found_by_the_lottery_id_of_its_offer_letter() -> None:
    document = published(5)
    wanted = "00000002-AAAA-bbbb-cccc-dddddddddddd "  # as typed: capitals and a space

    found = lottery.lookup(document, wanted)

    assert found is not None
    assert found["id"] == "00000002-aaaa-bbbb-cccc-dddddddddddd"
    assert found["outcome"] == "reserve" and found["lot"]
    assert lottery.lookup(document, "00000009-aaaa-bbbb-cccc-dddddddddddd") is None


def test_a_pagers_links_turn_its_own_list_and_keep_the_rest_of_the_address() -> None:
    query = {"reason": "audit 7/2026", "convoys": "2", "returnees": "3"}

    pager = Pager.asked("/console/settlements/ZAN-002", query, "returnees", 50).of(420)

    assert (pager.number, pager.pages, pager.offset) == (3, 9, 100)
    assert pager.next == (
        "/console/settlements/ZAN-002?reason=audit+7%2F2026&convoys=2&returnees=4#returnees"
    )
    assert pager.previous == (
        "/console/settlements/ZAN-002?reason=audit+7%2F2026&convoys=2&returnees=2#returnees"
    )
    first = Pager.asked("/s", {"returnees": "2"}, "returnees", 50).of(60)
    assert first.previous == "/s#returnees" and first.next is None  # page 1 needs no number


def test_a_page_past_the_end_or_not_a_number_is_the_last_or_the_first() -> None:
    assert Pager.asked("/s", {"entrants": "99"}, "entrants", 100).of(250).number == 3
    assert Pager.asked("/s", {"entrants": "-1"}, "entrants", 100).of(250).number == 1
    assert Pager.asked("/s", {"entrants": "x"}, "entrants", 100).of(0).pages == 1
    assert Pager.asked("/s", {"per_page": "5"}, "entrants", 100).size == 5
    assert Pager.asked("/s", {"per_page": "100000"}, "entrants", 100).size == 500


def test_a_round_not_drawn_yet_shows_no_lots() -> None:
    document = {
        "announcement": {
            "entrants": [
                {
                    "id": "p1",
                    "priority_group": "other",
                    "priority_rank": 4,
                    "score": 0.0,
                    "rooms_entitled": 2,
                }
            ]
        },
        "result": None,
    }

    (row,) = lottery.entrant_lots(document)

    assert row["lot"] is None and row["outcome"] == "waiting" and row["position"] is None
    assert settlement.round_state({"drawn_at": None, "voided_at": None}).startswith("Announced")
