"""Commands on long-lived aggregates, with and without snapshots, in the same run.

    python -m bench.snapshot_bench --size quick   # a settlement of 2,500 units, 200 families
    python -m bench.snapshot_bench --size full    # 10,000 units, 1,000 families

Measured on a settlement whose units were registered (one event each):
- the residence registration of each family (loads its relocation, its reintegration
  follow-up, its household and the whole settlement, then saves two aggregates);
- a command on the settlement itself (one more unit registered), once per family;
- the bulk load of every family's relocation case (``load_many``, as offers and convoys do).
Each runs twice on a fresh database: without snapshots (``IS_SNAPSHOTTING_ENABLED=n``, every
load replays every event: the code before snapshots) and with them. The ceiling is the same
residence registration in a settlement without units: everything but the replay of the
settlement. Rows read per command are counted at the recorders.
Uses DATABASE_URL when set, else a fresh embedded PostgreSQL under .data/bench.
Writes bench/results/snapshot-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import psycopg

from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from domain.relocation import Relocation

if TYPE_CHECKING:
    from infra.bootstrap import Container

SIZES = {"quick": (2_500, 200), "full": (10_000, 1_000)}
SETTLEMENT = "ZAN-002"
ROOT = Path(__file__).resolve().parent.parent
OPERATOR = CommandContext(Actor("bench", "operator"), "bench", "bench")


class RowsRead:
    """Rows returned by the event store's and the snapshot store's recorders."""

    def __init__(self, container: Container) -> None:
        self.rows = 0
        app = container.application
        for recorder in [app.recorder] + ([app.snapshots.recorder] if app.snapshots else []):
            select = recorder.select_events

            def counted(*args: Any, _select: Any = select, **kwargs: Any) -> Any:
                found = _select(*args, **kwargs)
                self.rows += len(found)
                return found

            recorder.select_events = counted  # type: ignore[method-assign]


def fresh_container(server: str) -> tuple[Container, str]:
    from infra.bootstrap import Container
    from infra.config import Settings

    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(server)
    params["dbname"] = name
    url = psycopg.conninfo.make_conninfo("", **params)
    return Container(Settings(database_url=url, data_dir=ROOT / ".data" / "bench")), name


def prepare(container: Container, units: int, families: int) -> list[Any]:
    """The settlement with its units, and families at the step before residence."""
    housing = container.services.housing
    today = date.today()
    housing.register_settlement(SETTLEMENT)
    housing.certify_clearance(SETTLEMENT, "Mine Action Agency", today - timedelta(days=30), "CL-1")
    housing.open_for_return(SETTLEMENT, today - timedelta(days=20))
    for start in range(0, units, 1000):
        housing.register_units(
            SETTLEMENT,
            [
                {
                    "reference": f"U-{n}",
                    "address": f"Street {n % 50}, {n}",
                    "rooms": 3,
                    "kind": "house",
                }
                for n in range(start, min(units, start + 1000))
            ],
        )
    store = container.store
    household_ids = []
    for i in range(families):
        household_id = container.services.registry.register_household(
            RegisterHousehold(
                members=[
                    NewMember(
                        fin=f"{i:05d}BN",
                        first_name="Aysel",
                        last_name="Məmmədova",
                        patronymic=None,
                        birth_date=date(1980, 1, 1),
                        sex="female",
                        relationship="head",
                    )
                ],
                origin_settlement_code=SETTLEMENT,
                current_address="Bakı, yataqxana 4",
            )
        )
        case = Relocation(household_id=household_id, settlement_code=SETTLEMENT)
        case.offer_housing(uuid4(), uuid4(), 3, f"Street {i}", today, 14, False)
        case.accept_offer(today)
        case.give_consent(["house", "date"], f"CONSENT-{i}", "Bench Operator")
        case.schedule(uuid4(), today)
        case.depart(today)
        case.arrive(today, 1)
        case.hand_over_keys(today)
        store.save(case)
        household_ids.append(household_id)
    return household_ids


def timed(calls: list[Callable[[], Any]], counter: RowsRead) -> dict[str, Any]:
    latencies, rows = [], []
    started = time.perf_counter()
    for call in calls:
        before, t0 = counter.rows, time.perf_counter()
        call()
        latencies.append((time.perf_counter() - t0) * 1000)
        rows.append(counter.rows - before)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "commands": len(calls),
        "per_s": round(len(calls) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "rows_read_max": max(rows),
        "rows_read_mean": round(statistics.fmean(rows), 1),
    }


def run(server: str, units: int, families: int, snapshots: bool) -> dict[str, Any]:
    os.environ["IS_SNAPSHOTTING_ENABLED"] = "y" if snapshots else "n"
    container, name = fresh_container(server)
    try:
        with acting_as(OPERATOR):
            ids = prepare(container, units, families)
            with psycopg.connect(container.database_url, autocommit=True) as conn:
                conn.execute("ANALYZE")
            counter = RowsRead(container)
            moves = container.services.relocation
            today = date.today()
            figures = {
                "residence": timed(
                    [
                        (lambda h=h, i=i: moves.register_residence(h, today, f"RES-{i}"))
                        for i, h in enumerate(ids)
                    ],
                    counter,
                ),
                "settlement_command": timed(
                    [
                        (
                            lambda i=i: container.services.housing.register_units(
                                SETTLEMENT,
                                [
                                    {
                                        "reference": f"X-{i}",
                                        "address": "x",
                                        "rooms": 2,
                                        "kind": "house",
                                    }
                                ],
                            )
                        )
                        for i in range(families)
                    ],
                    counter,
                ),
            }
            from domain.relocation import relocation_id

            wanted = [relocation_id(h) for h in ids]
            started = time.perf_counter()
            loaded = container.store.load_many(wanted)
            figures["load_many_relocations"] = {
                "aggregates": len(loaded),
                "per_s": round(len(loaded) / (time.perf_counter() - started), 1),
            }
        return figures
    finally:
        container.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def interleaved_loads(server: str, units: int, rounds: int = 60) -> dict[str, Any]:
    """The settlement loaded by two applications on the same database, one without snapshots
    (every event replayed) and one with, in alternation: a ratio the machine's other load
    affects least."""
    from infra.bootstrap import Container
    from infra.config import Settings

    with_, name = fresh_container(server)
    without = Container(
        Settings(database_url=with_.database_url, data_dir=ROOT / ".data" / "bench")
    )
    try:
        with acting_as(OPERATOR):
            # The library reads the setting when the application is built (on first use).
            os.environ["IS_SNAPSHOTTING_ENABLED"] = "y"
            assert with_.application.snapshots is not None
            os.environ["IS_SNAPSHOTTING_ENABLED"] = "n"
            assert without.application.snapshots is None
            os.environ["IS_SNAPSHOTTING_ENABLED"] = "y"
            prepare(with_, units, 0)
            timings: dict[str, list[float]] = {"without_snapshots": [], "with_snapshots": []}
            for _ in range(rounds):
                for label, container in (("without_snapshots", without), ("with_snapshots", with_)):
                    t0 = time.perf_counter()
                    container.services.housing.settlement(SETTLEMENT)
                    timings[label].append((time.perf_counter() - t0) * 1000)
        medians = {k: round(statistics.median(v), 2) for k, v in timings.items()}
        return {
            "settlement_units": units,
            "median_ms": medians,
            "ratio": round(medians["without_snapshots"] / medians["with_snapshots"], 1),
        }
    finally:
        without.close()
        with_.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    args = parser.parse_args()
    units, families = SIZES[args.size]
    server = os.environ.get("DATABASE_URL")
    if not server:
        from infra.postgres import start_embedded

        server = start_embedded(ROOT / ".data" / "bench" / "postgres")
    results: dict[str, Any] = {}
    for label, snapshots, with_units in (
        ("without_snapshots", False, units),
        ("with_snapshots", True, units),
        ("ceiling_no_units", True, 0),
    ):
        results[label] = run(server, with_units, families, snapshots)
        print(label, json.dumps(results[label]), flush=True)
    results["settlement_load_interleaved"] = interleaved_loads(server, units)
    print("settlement_load_interleaved", json.dumps(results["settlement_load_interleaved"]))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    before, after = results["without_snapshots"], results["with_snapshots"]
    document = {
        "benchmark": "snapshots",
        "size": args.size,
        "settlement_units": units,
        "families": families,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        **results,
        "speedup": {
            "residence": round(after["residence"]["per_s"] / before["residence"]["per_s"], 1),
            "settlement_command": round(
                after["settlement_command"]["per_s"] / before["settlement_command"]["per_s"], 1
            ),
            "load_many_relocations": round(
                after["load_many_relocations"]["per_s"] / before["load_many_relocations"]["per_s"],
                2,
            ),
        },
        "residence_to_ceiling": round(
            after["residence"]["per_s"] / results["ceiling_no_units"]["residence"]["per_s"], 2
        ),
    }
    out = ROOT / "bench" / "results" / f"snapshot-{args.size}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
