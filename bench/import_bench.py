"""Legacy import rate at the registry's size, beside its ceiling (PostgreSQL COPY of the same rows).

    python -m bench.import_bench --size quick   # 5,000 households (about 19,000 persons)
    python -m bench.import_bench --size full    # 175,000 households (about 660,000 persons)
    python -m bench.import_bench --households 50000 --workers 2   # a custom size, 2 processes

The synthetic registry is generated reproducibly from --seed: household sizes around the
real average of 3.8, origins across the settlements of domain/reference/settlements.csv.
Uses DATABASE_URL when set, else a fresh embedded PostgreSQL under .data/bench.
Writes bench/results/import-<size>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import secrets
import string
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

from application.legacy_rows import COLUMNS
from domain.base import Actor
from domain.geography import settlements
from infra.legacy_csv import LegacyImport

SIZES = {"quick": 5_000, "full": 175_000}
ROOT = Path(__file__).resolve().parent.parent
FIRST = [
    "Aysel",
    "Rauf",
    "Nigar",
    "Elçin",
    "Səbinə",
    "Ülvi",
    "Günel",
    "Orxan",
    "Ləman",
    "Tural",
    "Şəbnəm",
    "İlqar",
]
LAST = [
    "Məmmədov",
    "Əliyev",
    "Həsənov",
    "Quliyev",
    "Hüseynov",
    "Cəfərov",
    "Rəhimov",
    "Abbasov",
    "İsmayılov",
]


def generate(path: Path, households: int, seed: int) -> int:
    rng = random.Random(seed)
    origins = list(settlements())
    persons = 0
    alphabet = string.ascii_uppercase + string.digits
    used: set[str] = set()
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for h in range(households):
            size = rng.choices([1, 2, 3, 4, 5, 6, 7, 8], weights=[8, 14, 20, 24, 18, 9, 5, 2])[0]
            origin = rng.choice(origins)
            last = rng.choice(LAST)
            for i in range(size):
                fin = "".join(rng.choice(alphabet) for _ in range(7))
                while fin in used:
                    fin = "".join(rng.choice(alphabet) for _ in range(7))
                used.add(fin)
                female = rng.random() < 0.5
                born = date(1940 + rng.randrange(80), 1 + rng.randrange(12), 1 + rng.randrange(28))
                writer.writerow(
                    [
                        f"H{h:07d}",
                        "head" if i == 0 else rng.choice(["spouse", "child", "child", "parent"]),
                        fin,
                        last + ("a" if female else ""),
                        rng.choice(FIRST),
                        "",
                        born.isoformat(),
                        "female" if female else "male",
                        f"IDP-{h:07d}{i}",
                        "1993-10-01",
                        origin,
                        f"Bakı, yataqxana {h % 500}" if i == 0 else "",
                        "",
                        rng.choice(["dormitory", "sanatorium", "others_flat", "own_or_rented"])
                        if i == 0
                        else "",
                        "war_participant" if i == 0 and rng.random() < 0.1 else "",
                        "",
                    ]
                )
                persons += 1
    return persons


def copy_ceiling(database_url: str, path: Path) -> float:
    """COPY the same rows into an unlogged-free plain table: the fastest way PostgreSQL takes them."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_ceiling")
        conn.execute(f"CREATE TABLE bench_copy_ceiling ({', '.join(f'{c} text' for c in COLUMNS)})")
        started = time.perf_counter()
        with (
            conn.cursor().copy(
                "COPY bench_copy_ceiling FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
            path.open("rb") as data,
        ):
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_ceiling")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--households", type=int, help="a custom size (overrides --size)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    households = args.households or SIZES[args.size]
    size = f"{households}" if args.households else args.size

    from infra.bootstrap import Container
    from infra.config import Settings

    server = os.environ.get("DATABASE_URL")
    if not server:
        from infra.postgres import start_embedded

        server = start_embedded(ROOT / ".data" / "bench" / "postgres")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(server)
    params["dbname"] = name
    database_url = psycopg.conninfo.make_conninfo("", **params)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "registry.csv"
        persons = generate(path, households, args.seed)
        settings = Settings(database_url=database_url, data_dir=ROOT / ".data" / "bench")
        container = Container(settings)
        try:
            importer = LegacyImport(
                container.store, Actor("bench", "operator"), 500, "utf-8", args.workers, settings
            )
            started = time.perf_counter()
            result = importer.run(path)
            elapsed = time.perf_counter() - started
            with psycopg.connect(database_url) as conn:  # the figures are what the store holds
                row = conn.execute(
                    "SELECT count(*) FROM reintegration_events WHERE originator_version = 1 "
                    "AND topic LIKE '%%:Household.Registered'"
                ).fetchone()
            assert row is not None and row[0] == result.households_registered == households, row
            ceiling = copy_ceiling(database_url, path)
        finally:
            container.close()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}"')
    # the worker processes' (waited for): taken before git runs, whose fork would count
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    figures = {
        "benchmark": "legacy import",
        "size": size,
        "workers": args.workers,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "households": households,
        "persons": persons,
        "households_registered": result.households_registered,
        "rows_rejected": result.rows_rejected,
        "seconds": round(elapsed, 2),
        "persons_per_second": round(persons / elapsed),
        "ceiling": "PostgreSQL COPY of the same CSV into a plain table",
        "ceiling_persons_per_second": round(persons / ceiling),
        "ratio_to_ceiling": round((persons / elapsed) / (persons / ceiling), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_mib_worker": round(worker_rss / 1024),
        "target_persons_per_second": 10_000,
    }
    out = ROOT / "bench" / "results" / f"import-{size}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
