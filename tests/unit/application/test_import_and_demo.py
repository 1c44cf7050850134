"""The legacy import's use case and the demonstration in memory: every row ends registered,
skipped or rejected, counted from the store; the Great Return demo runs end to end."""

from __future__ import annotations

from collections.abc import Iterator

from application.demo import great_return
from application.legacy_import import HouseholdImport, ImportResult, Rejection
from application.legacy_rows import Row
from application.services import Services
from domain.base import Actor
from tests.support import random_fin


class Rows:
    """The file's rows grouped by household, as the adapter's spool gives them."""

    def __init__(self, households: dict[str, list[Row]]) -> None:
        self.grouped = households
        self.rejected: list[Rejection] = []

    def household_count(self) -> int:
        return len(self.grouped)

    def households(self) -> Iterator[tuple[str, int, Iterator[Row]]]:
        for ref, rows in self.grouped.items():
            yield ref, len(rows), iter(rows)

    def reject(self, rejections: list[Rejection]) -> None:
        self.rejected += rejections


def row(line: int, ref: str, relationship: str, fin: str, **values: str) -> Row:
    return Row(
        line,
        {
            "household_ref": ref,
            "relationship": relationship,
            "fin": fin,
            "last_name": "Əliyeva",
            "first_name": "Günel",
            "birth_date": "12.03.1985",
            "sex": "QADIN",
            "idp_status_since": "1994-05-01",
            "origin_settlement_code": "ZAN-002",
            "current_address": "Bakı, yataqxana 4",
            "housing_condition": "dormitory",
            "vulnerabilities": "single_parent",
            **values,
        },
    )


def imported(services: Services, rows: Rows) -> ImportResult:
    result = ImportResult(rows_read=sum(len(r) for r in rows.grouped.values()))
    return HouseholdImport(services.store, Actor("importer", "operator"), 2).register(
        rows, rows, result
    )


def test_every_row_is_registered_skipped_or_rejected_and_counted_from_the_store(
    services: Services,
) -> None:
    shared = random_fin()
    rows = Rows(
        {
            "H1": [row(2, "H1", "head", random_fin()), row(3, "H1", "child", random_fin())],
            "H2": [row(4, "H2", "head", shared)],
            "H3": [row(5, "H3", "head", random_fin(), birth_date="31.02.1985")],
            "H4": [row(6, "H4", "head", shared, last_name="Həsənova")],  # the FIN again
        }
    )
    first = imported(services, rows)
    assert (first.households_registered, first.persons_registered) == (2, 3)
    assert first.rows_rejected == 2 and first.accounted_for and first.exit_code == 3
    assert {r.line: r.household_ref for r in rows.rejected} == {5: "H3", 6: "H4"}
    assert "birth_date" in rows.rejected[0].reason
    assert len(services.store.households()) == 2
    household = services.registry.get_household(services.store.households()[0])
    assert household.housing_condition == "dormitory"

    again = imported(services, Rows({k: v for k, v in rows.grouped.items() if k in ("H1", "H2")}))
    assert (again.households_registered, again.households_already_registered) == (0, 2)
    assert again.rows_skipped == 3 and again.accounted_for and again.exit_code == 0


def test_the_great_return_demo_runs_end_to_end_on_the_write_side_alone(
    services: Services,
) -> None:
    figures = great_return(services, families=40, seed=11)
    assert figures["families_registered"] == 40
    assert figures["units_drawn"] == min(figures["entrants"], 200)
    assert services.audit.rerun_lottery("ZAN-002", 1).matches
    assert figures["allocated"] > 0 and figures["convoys"]
