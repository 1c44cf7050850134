"""The settlement and lottery pages' own logic: the pipeline in the order of the process, the
units table and chart, every status, stage, criterion and group named in words, and each
entrant's lot and place as the draw gives them."""

from __future__ import annotations

from uuid import uuid4

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
