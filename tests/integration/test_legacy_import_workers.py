"""The legacy import with worker processes: the same store as with one process, a bad row
rejected with its line and nothing of its household written, and a worker that dies stops the
import with nothing counted that is not stored."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import infra.legacy_csv as legacy_csv
from application.legacy_import import (
    Batch,
    BatchOutcome,
    HouseholdImport,
    ImportResult,
    WorkerFailed,
)
from domain.registry import person_id_for
from infra import tamper_evidence
from infra.bootstrap import Container
from infra.config import Settings
from infra.legacy_csv import LegacyImport
from infra.legacy_workers import ProcessWorkers
from tests.integration.test_legacy_import import OPERATOR, report_rows, row, stored, write
from tests.support import create_database, random_fin

BATCH = 40


@pytest.fixture
def used_workers(monkeypatch: pytest.MonkeyPatch) -> list[ProcessWorkers]:
    """The worker pools the imports of the test started (to prove the parallel path ran)."""
    started: list[ProcessWorkers] = []
    make = legacy_csv.process_workers

    def spy(*args: Any) -> ProcessWorkers:
        started.append(make(*args))
        return started[-1]

    monkeypatch.setattr(legacy_csv, "process_workers", spy)
    monkeypatch.setattr(legacy_csv, "WORKERS_FROM_BYTES", 0)
    return started


def registry_rows(
    households: int, seed: int, shared: int = 6
) -> tuple[list[dict[str, str]], list[str]]:
    """Households of one to four persons (fifteen in the first batch, which takes longest, one in
    the second), their
    rows shuffled; ``shared`` FINs of the first batch's households are also in households of
    the second batch: the first household in the file's order must get them, even though
    a worker would register the second batch first."""
    rng = random.Random(seed)
    rows, fins = [], []
    firsts: list[str] = []
    for h in range(households):
        size = 15 if h < BATCH else 1 if h < 2 * BATCH else 1 + h % 4
        for i in range(size):
            fin = random_fin()
            fins.append(fin)
            if i == 1 and h < BATCH:
                firsts.append(fin)
            rows.append(
                row(
                    f"W{h:05d}",
                    fin,
                    "head" if i == 0 else "child",
                    birth_date=f"{1950 + i * 4}-0{1 + i % 9}-1{i % 10}",
                    vulnerabilities="war_participant" if h % 7 == 0 and i == 0 else "",
                )
            )
    for k in range(shared):  # a child again in a household of the second batch
        rows.append(row(f"W{BATCH + 1 + k:05d}", firsts[k], "child", birth_date="1959-02-11"))
    rng.shuffle(rows)
    return rows, fins


def imported(
    database_url: str,
    file: Path,
    workers: int,
    report: Path,
    on_progress: Any = None,
    jobs: list[LegacyImport] | None = None,
) -> ImportResult:
    """The file imported with ``workers`` processes (the job is appended to ``jobs``)."""
    settings = Settings(database_url=database_url)
    container = Container(settings)
    try:
        job = LegacyImport(container.store, OPERATOR, BATCH, "utf-8", workers, settings)
        if jobs is not None:
            jobs.append(job)
        return job.run(file, on_progress, report)
    finally:
        container.close()


def registrations(database_url: str) -> list[str]:
    """What the store holds, without what differs by run (event ids, times, correlation, the
    households' random ids, each written as its members' ids instead): every event of every
    aggregate, and the household-origins index."""
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT originator_id::text, originator_version, topic, "
            "(convert_from(state, 'UTF8')::jsonb - ARRAY['event_id', 'timestamp', "
            "'correlation_id', 'causation_id'])::text FROM reintegration_events"
        ).fetchall()
        origins = conn.execute(
            "SELECT household_id::text, origin_settlement_code "
            "FROM reintegration_events_household_origins"
        ).fetchall()
    households = {
        aggregate: ",".join(
            sorted(m["_data_"]["person_id"]["_data_"] for m in json.loads(state)["members"])
        )
        for aggregate, _, topic, state in events
        if topic.endswith("Household.Registered")
    }
    assert len(households) == len(set(households.values()))

    def same_in_every_run(text: str) -> str:
        for household, members in households.items():
            for form in (household, household.replace("-", "")):  # as text and as stored
                text = text.replace(form, f"household of {members}")
        return text

    return sorted(
        [same_in_every_run(repr(tuple(event))) for event in events]
        + [same_in_every_run(repr(tuple(origin))) for origin in origins]
    )


def chain_verifies(database_url: str) -> bool:
    container = Container(Settings(database_url=database_url))
    try:
        audit = container.audit_trail
        report = tamper_evidence.verify(
            database_url, audit.events_table, audit.chain_table, [], [], None, None, "test"
        )
        return bool(report.ok)
    finally:
        container.close()


def test_the_same_file_with_one_or_two_workers_gives_the_same_store_and_report(
    server_url: str, tmp_path: Path, used_workers: list[ProcessWorkers]
) -> None:
    rows, _ = registry_rows(300, 5)
    rows.append(row("W99999", "bad", "head"))  # a FIN that is no FIN, in some worker's share
    file = write(tmp_path / "registry.csv", rows)
    alone, together = create_database(server_url), create_database(server_url)

    one = imported(alone, file, 1, tmp_path / "one.csv")
    assert not used_workers
    two = imported(together, file, 2, tmp_path / "two.csv")
    assert len(used_workers) == 1 and used_workers[0].count == 2

    assert (one.households_registered, one.persons_registered, one.rows_rejected) == (
        two.households_registered,
        two.persons_registered,
        two.rows_rejected,
    )
    assert two.accounted_for and two.rows_rejected > 6  # the shared FINs' households and W99999
    assert stored(together) == {
        "households": two.households_registered,
        "persons": two.persons_registered,
    }
    assert registrations(alone) == registrations(together)
    # The same rows rejected (a shared FIN's reason may be worded as a batch saw it).
    assert [
        (r["line"], r["household_ref"], r["fin"]) for r in report_rows(tmp_path / "one.csv")
    ] == [(r["line"], r["household_ref"], r["fin"]) for r in report_rows(tmp_path / "two.csv")]
    assert chain_verifies(together)


def test_a_bad_row_in_a_workers_share_is_rejected_with_its_line_and_none_of_its_household_written(
    database_url: str, tmp_path: Path, used_workers: list[ProcessWorkers]
) -> None:
    rows, fins = registry_rows(200, 6)
    bad_fin = fins[250]
    for r in rows:
        if r["fin"] == bad_fin:
            r["birth_date"] = "31.02.1985"
    file = write(tmp_path / "registry.csv", rows)
    bad_line = next(i + 2 for i, r in enumerate(rows) if r["fin"] == bad_fin)
    bad_household = next(r["household_ref"] for r in rows if r["fin"] == bad_fin)

    result = imported(database_url, file, 2, tmp_path / "report.csv")

    assert used_workers and result.accounted_for and result.exit_code == 3
    reasons = {int(r["line"]): r for r in report_rows(tmp_path / "report.csv")}
    assert "birth_date" in reasons[bad_line]["reason"]
    assert reasons[bad_line]["household_ref"] == bad_household
    members = [r["fin"] for r in rows if r["household_ref"] == bad_household]
    with psycopg.connect(database_url) as conn:
        (written,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM reintegration_events WHERE originator_id = ANY(%s)",
            ([person_id_for(fin) for fin in members],),
        ).fetchone()
    assert written == 0
    assert stored(database_url)["households"] == result.households_registered


def test_a_worker_that_dies_stops_the_import_and_a_second_run_finishes_it_exactly(
    database_url: str, tmp_path: Path, used_workers: list[ProcessWorkers]
) -> None:
    rows, _ = registry_rows(600, 7)
    file = write(tmp_path / "registry.csv", rows)
    killed: list[int] = []

    def kill_a_worker(phase: str, done: int, total: int) -> None:
        if phase == "registering" and not killed:
            children: Iterator[Any] = iter(multiprocessing.active_children())
            victim = next(c for c in children if c.pid is not None)
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    jobs: list[LegacyImport] = []
    with pytest.raises(WorkerFailed, match="worker process died"):
        imported(database_url, file, 2, tmp_path / "report.csv", kill_a_worker, jobs)
    partial = jobs[0].result  # what the stopped import counted
    held = stored(database_url)
    assert killed and 0 < partial.households_registered <= held["households"]
    assert partial.persons_registered <= held["persons"]

    again = imported(database_url, file, 2, tmp_path / "report.csv")
    assert again.accounted_for
    assert again.households_already_registered == held["households"]  # skipped, not twice
    assert stored(database_url) == {
        "households": held["households"] + again.households_registered,
        "persons": held["persons"] + again.persons_registered,
    }
    with psycopg.connect(database_url) as conn:
        (distinct, total) = conn.execute(  # type: ignore[misc]
            "SELECT count(DISTINCT originator_id), count(*) FROM reintegration_events "
            "WHERE topic LIKE '%%Person.Registered'"
        ).fetchone()
    assert distinct == total  # nobody registered twice
    assert chain_verifies(database_url)


class LastBatchFirst:
    """Workers that commit the batches in reverse order (in this process): the latest batch
    of the file is in the store before the first one is even built."""

    def __init__(self, importer: HouseholdImport) -> None:
        self.importer = importer

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def run(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, BatchOutcome]]:
        for batch in reversed(list(batches)):
            yield batch, self.importer.register_batch(batch)


def test_a_fin_shared_by_two_households_goes_to_the_first_whatever_order_workers_commit_in(
    server_url: str, tmp_path: Path, used_workers: list[ProcessWorkers]
) -> None:
    rows, _ = registry_rows(160, 8, shared=10)
    file = write(tmp_path / "registry.csv", rows)
    alone, reversed_ = create_database(server_url), create_database(server_url)
    one = imported(alone, file, 1, tmp_path / "one.csv")

    container = Container(Settings(database_url=reversed_))
    try:
        job = LegacyImport(container.store, OPERATOR, BATCH, "utf-8")
        job._workers = lambda: LastBatchFirst(job.importer)  # type: ignore[method-assign]
        last_first = job.run(file, None, tmp_path / "reversed.csv")
    finally:
        container.close()

    assert one.rows_rejected == last_first.rows_rejected > 0
    assert registrations(alone) == registrations(reversed_)
