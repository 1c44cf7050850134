"""`reintegration import registry FILE` under hostile data: every row is registered, skipped or
rejected, and every figure is checked against what the event store (and the read models) hold."""

from __future__ import annotations

import csv
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from application.legacy_import import HouseholdImport, ImportResult, Prepared
from application.legacy_rows import COLUMNS
from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold, person_id_for
from infra.bootstrap import Container
from infra.config import Settings
from infra.legacy_csv import LegacyImport, neutralise
from tests.support import ROOT, random_fin, wait_until

SAMPLE = ROOT / "infra" / "samples" / "legacy_registry.csv"
OPERATOR = Actor("importer", "operator")


@pytest.fixture
def embedded(database_url: str) -> Iterator[Container]:
    """The composition root without Kafka: the read models follow the event store's log."""
    container = Container(Settings(database_url=database_url))
    assert container.application  # creates the event store's tables
    try:
        yield container
    finally:
        container.close()


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": ""}
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "import", "registry", *args],
        env=env,
        capture_output=True,
        text=True,
    )


def row(ref: str, fin: str, relationship: str = "head", **values: str) -> dict[str, str]:
    base = {
        "household_ref": ref,
        "relationship": relationship,
        "fin": fin,
        "last_name": "Məmmədov",
        "first_name": "Rauf",
        "patronymic": "",
        "birth_date": "1970-04-12",
        "sex": "male",
        "idp_certificate_number": "",
        "idp_status_since": "1993-10-01",
        "origin_settlement_code": "ZAN-002" if relationship == "head" else "",
        "current_address": "Bakı, yataqxana 4" if relationship == "head" else "",
        "registered_address": "",
        "housing_condition": "dormitory" if relationship == "head" else "",
        "vulnerabilities": "",
        "contact_phone": "",
    }
    base.update(values)
    return base


def write(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def stored(database_url: str) -> dict[str, int]:
    """What the event store holds: registrations of households and persons."""
    with psycopg.connect(database_url) as conn:
        try:
            found = dict(
                conn.execute(
                    "SELECT topic, count(*) FROM reintegration_events WHERE originator_version = 1 "
                    "GROUP BY topic"
                ).fetchall()
            )
        except psycopg.errors.UndefinedTable:
            found = {}  # no command has created the event store yet
    return {
        "households": sum(n for t, n in found.items() if t.endswith("Household.Registered")),
        "persons": sum(n for t, n in found.items() if t.endswith("Person.Registered")),
    }


def members_of(container: Container, fin: str) -> int:
    registry = container.services.registry
    return len(registry.get_household(registry.get_person(fin).household_id).members)


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as report:
        return list(csv.DictReader(report))


def assert_accounted(result: ImportResult, database_url: str, before: dict[str, int]) -> None:
    """The figures are what the store gained, and every row ended in one state."""
    after = stored(database_url)
    assert after["households"] - before["households"] == result.households_registered
    assert after["persons"] - before["persons"] == result.persons_registered
    assert result.accounted_for, result


def assert_read_models_hold_everything(container: Container) -> None:
    """What the import recorded reaches every read model: no dead letter, and each view
    equals one rebuilt from the log."""
    container.projections.catch_up()
    for name in ("households", "eligibility", "housing"):
        report = container.projections.cross_check(name, "test")
        assert report.ok, report.to_text()
        assert container.projections.status(name).dead_letters_pending == 0


def test_the_sample_registry_imports_once_and_reports_its_rejected_rows(
    database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "registry.csv"
    shutil.copy(SAMPLE, file)
    first = cli(database_url, str(file), "--batch", "2")
    assert first.returncode == 3, first.stderr  # rows were rejected
    assert "4 households (8 persons) registered" in first.stderr
    assert "2 rows rejected" in first.stderr and "10 rows read" in first.stderr
    rejected = report_rows(tmp_path / "registry.csv.rejected.csv")
    assert [(r["line"], r["household_ref"]) for r in rejected] == [("8", "H-0004"), ("9", "H-0005")]
    assert "origin_settlement_code" in rejected[0]["reason"]
    assert rejected[1]["reason"].startswith("fin: ")
    assert stored(database_url) == {"households": 4, "persons": 8}

    second = cli(database_url, str(file))
    assert second.returncode == 3
    assert (
        "0 households (0 persons) registered; 4 households (8 rows) were already" in second.stderr
    )
    assert stored(database_url) == {"households": 4, "persons": 8}

    clean = tmp_path / "clean.csv"
    clean.write_text(
        "\n".join(line for i, line in enumerate(SAMPLE.read_text().splitlines()) if i not in (7, 8))
        + "\n",
        encoding="utf-8",
    )
    third = cli(database_url, str(clean))
    assert third.returncode == 0, third.stderr  # every row registered or skipped


def test_a_conflict_inside_a_batch_takes_only_its_own_household_down(
    embedded: Container, database_url: str, tmp_path: Path
) -> None:
    fins = [random_fin() for _ in range(8)]
    shared = fins[3]
    rows = [
        row("A", fins[0]),
        row("A", fins[1], "spouse", first_name="Aysel", sex="female"),
        row("B", fins[2]),
        row("B", shared, "child"),
        row("C", fins[4]),
        row("C", shared, "child"),  # the same person in two households of one batch
        row("D", fins[5]),
        row("E", fins[6]),
    ]
    raced = fins[6]
    registry = embedded.services.registry

    class SomeoneRegistersMeanwhile(HouseholdImport):
        """Between the check and the save, an operator registers E's head elsewhere."""

        def _classify_existing(self, *args: Any) -> list[Prepared]:
            fresh = super()._classify_existing(*args)
            with acting_as(CommandContext(Actor("op", "operator"), "c", "c")):
                registry.register_household(
                    RegisterHousehold(
                        [
                            NewMember(
                                raced, "Leyla", "Həsənova", None, date(1990, 1, 1), "female", "head"
                            )
                        ],
                        "LAC-002",
                        "Sumqayıt",
                    )
                )
            return fresh

    before = stored(database_url)
    job = LegacyImport(embedded.store, OPERATOR, batch_households=10)
    job.importer = SomeoneRegistersMeanwhile(embedded.store, OPERATOR, batch_households=10)
    result = job.run(write(tmp_path / "conflict.csv", rows), report=tmp_path / "report.csv")
    before["households"] += 1  # the operator's registration
    before["persons"] += 1
    assert_accounted(result, database_url, before)
    assert result.households_registered == 3  # A, B and D; C shares a FIN, E was raced
    assert members_of(embedded, fins[0]) == 2 and members_of(embedded, fins[2]) == 2
    assert embedded.services.registry.get_person(fins[5]).household_id
    reasons = {
        (r["household_ref"], r["line"]): r["reason"] for r in report_rows(tmp_path / "report.csv")
    }
    assert set(reasons) == {("C", "6"), ("C", "7"), ("E", "9")}
    assert "also in the household at line 4" in reasons[("C", "7")]
    assert "registered while importing" in reasons[("E", "9")]
    assert not embedded.application.recorder.select_events(person_id_for(fins[4]))
    assert_read_models_hold_everything(embedded)


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_written(
    database_url: str, tmp_path: Path
) -> None:
    rows = [
        row("H1", random_fin(), last_name="Mammadov", current_address="Bakı, yataqxana"),
        row("H2", random_fin(), last_name="Şahin", first_name="Gül"),
    ]
    file = write(tmp_path / "cp1254.csv", rows, encoding="cp1254")
    refused = cli(database_url, str(file))
    assert refused.returncode == 4
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr  # one line
    first_bad_byte = file.read_bytes().index("ı".encode("cp1254"))
    assert f"line 2, byte {first_bad_byte}: not valid UTF-8" in refused.stderr
    assert "--encoding" in refused.stderr and "Traceback" not in refused.stderr
    assert stored(database_url) == {"households": 0, "persons": 0}
    assert not (tmp_path / "cp1254.csv.rejected.csv").exists()

    imported = cli(database_url, str(file), "--encoding", "windows-1254")
    assert imported.returncode == 0, imported.stderr
    assert stored(database_url) == {"households": 2, "persons": 2}

    cyrillic = write(
        tmp_path / "cp1251.csv",
        [row("H3", random_fin(), last_name="Мамедов", first_name="Рауф", current_address="Баку")],
        encoding="cp1251",
    )
    assert cli(database_url, str(cyrillic)).returncode == 4
    assert cli(database_url, str(cyrillic), "--encoding", "windows-1251").returncode == 0
    bom = tmp_path / "bom.csv"
    bom.write_bytes(
        b"\xef\xbb\xbf" + write(tmp_path / "plain.csv", [row("H4", random_fin())]).read_bytes()
    )
    assert cli(database_url, str(bom)).returncode == 0
    assert stored(database_url) == {"households": 4, "persons": 4}
    unknown = cli(database_url, str(bom), "--encoding", "koi8-r")
    assert unknown.returncode == 4 and "windows-1251" in unknown.stderr


def test_oversized_and_malformed_rows_go_to_the_report_and_the_rest_is_imported(
    embedded: Container, database_url: str, tmp_path: Path
) -> None:
    good = [random_fin() for _ in range(3)]
    file = write(
        tmp_path / "hostile.csv",
        [
            row("G1", good[0]),
            row("BIG", random_fin(), current_address="x" * 200_000),  # one cell, 200 KB
            row("G2", good[1]),
            row("LONG", random_fin(), current_address="Bakı " * 20_000),  # a 100 KB line
            row("G3", good[2]),
        ],
    )
    with file.open("a", encoding="utf-8") as out:
        out.write("EXTRA,head," + random_fin() + ",A,B,,1970-01-01,male,,,ZAN-002,Bakı,,,,,,\n")
        out.write('QUOTE,head,"' + random_fin() + '"x,A,B,,1970-01-01,male,,,ZAN-002,Bakı,,,,\n')
    before = stored(database_url)
    result = LegacyImport(embedded.store, OPERATOR).run(file, report=tmp_path / "r.csv")
    assert_accounted(result, database_url, before)
    assert result.households_registered == 3 and result.rows_rejected == 4
    reasons = {
        r["household_ref"] or r["line"]: r["reason"] for r in report_rows(tmp_path / "r.csv")
    }
    assert any("longer than" in reason for reason in reasons.values()), reasons
    assert "the row has 18 cells; the header has 16" in reasons["EXTRA"]
    assert any("does not parse as CSV" in reason for reason in reasons.values()), reasons
    for fin in good:
        assert embedded.services.registry.get_person(fin)
    assert_read_models_hold_everything(embedded)


def test_a_household_whose_rows_are_scattered_is_registered_whole(
    embedded: Container, database_url: str, tmp_path: Path
) -> None:
    head, spouse, child, other = (random_fin() for _ in range(4))
    file = write(
        tmp_path / "scattered.csv",
        [
            row("H-7", child, "child", first_name="Orxan", birth_date="2001-01-01"),
            row("H-1", other),
            row("H-7", head),
            row("H-1", random_fin(), "spouse", sex="female", first_name="Aysel"),
            row("H-7", spouse, "spouse", sex="female", first_name="Aysel"),
        ],
    )
    result = LegacyImport(embedded.store, OPERATOR, batch_households=1).run(file)
    assert result.households_registered == 2 and result.persons_registered == 5
    assert members_of(embedded, head) == 3
    registry = embedded.services.registry
    household = registry.get_household(registry.get_person(child).household_id)
    assert household.housing_condition == "dormitory"  # from the head's row, not the first


def test_azerbaijani_values_are_accepted_in_any_letter_case(
    embedded: Container, tmp_path: Path
) -> None:
    head, wife = random_fin(), random_fin().lower()
    file = write(
        tmp_path / "case.csv",
        [
            row(
                "H",
                head,
                "HEAD",
                sex="KİŞİ",
                origin_settlement_code="ZAN-002",
                current_address="Bakı",
                housing_condition="DORMITORY",
                vulnerabilities="War_Participant",
            ),
            row("H", wife, "Spouse", sex="QADIN", first_name="Şəbnəm", birth_date="03.09.1972"),
        ],
    )
    result = LegacyImport(embedded.store, OPERATOR).run(file)
    assert result.households_registered == 1, result.rejected
    person = embedded.services.registry.get_person(wife.upper())
    assert person.sex == "female" and person.birth_date == date(1972, 9, 3)
    assert embedded.services.registry.get_person(head).sex == "male"


def test_report_cells_cannot_run_as_spreadsheet_formulas(database_url: str, tmp_path: Path) -> None:
    file = write(
        tmp_path / "formulas.csv",
        [
            row('=HYPERLINK("http://evil","x")', "+CMD|'/C calc'!A0"),
            row("@SUM(1+1)", "-2+3+cmd"),
            row("\tTAB", random_fin(), origin_settlement_code="=1+1"),
        ],
    )
    assert cli(database_url, str(file)).returncode == 3
    cells = [c for r in report_rows(tmp_path / "formulas.csv.rejected.csv") for c in r.values()]
    for cell in cells:
        assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=HYPERLINK" in " ".join(cells) and "'+CMD" in " ".join(cells)
    assert neutralise("=1+1") == "'=1+1" and neutralise("Bakı") == "Bakı"


def test_a_household_with_more_members_than_allowed_is_rejected_row_by_row(
    embedded: Container, tmp_path: Path
) -> None:
    big = [row("CLAN", random_fin())] + [
        row("CLAN", random_fin(), "child", birth_date="2001-01-01") for _ in range(40)
    ]
    result = LegacyImport(embedded.store, OPERATOR).run(
        write(tmp_path / "clan.csv", [*big, row("OK", random_fin())]), report=tmp_path / "r.csv"
    )
    assert result.households_registered == 1 and result.rows_rejected == 41
    assert all("at most 30 members" in r["reason"] for r in report_rows(tmp_path / "r.csv"))


def test_a_household_already_registered_with_other_details_is_rejected_not_skipped(
    embedded: Container, database_url: str, tmp_path: Path
) -> None:
    fin = random_fin()
    LegacyImport(embedded.store, OPERATOR).run(write(tmp_path / "a.csv", [row("H", fin)]))
    result = LegacyImport(embedded.store, OPERATOR).run(
        write(tmp_path / "b.csv", [row("H", fin, first_name="Ramiz")]), report=tmp_path / "r.csv"
    )
    assert result.rows_rejected == 1 and result.rows_skipped == 0
    (rejection,) = report_rows(tmp_path / "r.csv")
    assert rejection["reason"] == "already registered with other details: first_name"
    assert stored(database_url) == {"households": 1, "persons": 1}


def test_killed_at_any_moment_and_run_again_the_final_state_is_exact(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(13)
    rows, fins = [], []
    for h in range(2500):
        for i in range(1 + h % 4):
            fin = random_fin()
            fins.append(fin)
            rows.append(
                row(
                    f"K{h:05d}",
                    fin,
                    "head" if i == 0 else "child",
                    birth_date=f"{1950 + i * 15}-0{1 + i}-1{i}",
                )
            )
    rng.shuffle(rows)  # a household's rows anywhere in the file
    file = write(tmp_path / "big.csv", rows)
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": ""}
    command = [str(ROOT / ".venv/bin/reintegration"), "import", "registry", str(file)]
    # Killed while reading the file, then twice while registering (once a few hundred more
    # households are in the store each time), then run to the end.
    for households_stored in (None, 300, 1200):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if households_stored is None:
            time.sleep(0.8)
        else:
            wait_until(
                lambda n=households_stored, p=process: (
                    stored(database_url)["households"] >= n or p.poll() is not None
                ),
                60,
                0.01,
            )
        process.send_signal(signal.SIGKILL)
        process.wait()
    partial = stored(database_url)
    assert 0 < partial["households"] < 2500
    final = subprocess.run(command, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert stored(database_url) == {"households": 2500, "persons": len(rows)}
    summary = re.search(r"(\d+) households \((\d+) persons\) registered", final.stderr)
    assert summary is not None, final.stderr
    registered = int(summary.group(1))
    assert registered == 2500 - partial["households"]  # the rest were skipped, not registered twice
    with psycopg.connect(database_url) as conn:
        (distinct,) = conn.execute(
            "SELECT count(DISTINCT originator_id) FROM reintegration_events "
            "WHERE topic LIKE '%%Person.Registered'"
        ).fetchone()
    assert distinct == len(fins)


def test_a_file_without_the_registry_columns_is_refused_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "wrong.csv"
    file.write_text("name,age\nA,1\n", encoding="utf-8")
    result = cli(database_url, str(file))
    assert result.returncode == 4
    assert "missing columns: household_ref" in result.stderr
    missing = cli(database_url, str(tmp_path / "nope.csv"))
    assert missing.returncode == 4 and "no such file" in missing.stderr
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert cli(database_url, str(empty)).returncode == 4


def test_a_misspelt_column_refuses_the_file_instead_of_being_dropped_unread(
    database_url: str, tmp_path: Path
) -> None:
    file = write(tmp_path / "typo.csv", [row("H", random_fin(), vulnerabilities="war_participant")])
    text = file.read_text(encoding="utf-8").replace("vulnerabilities", "vulnerabilites", 1)
    file.write_text(text, encoding="utf-8")
    refused = cli(database_url, str(file))
    assert refused.returncode == 4
    assert "unknown columns: vulnerabilites" in refused.stderr
    assert stored(database_url) == {"households": 0, "persons": 0}


def test_every_line_a_broken_quote_swallows_is_accounted_for(
    embedded: Container, database_url: str, tmp_path: Path
) -> None:
    fins = [random_fin() for _ in range(4)]
    file = write(tmp_path / "quote.csv", [row("Q1", fins[0])])
    with file.open("a", encoding="utf-8", newline="") as out:
        out.write(f'Q2,head,{fins[1]},"Əliyev,Rauf,,1970-01-01,male,,,ZAN-002,Bakı,,,,\r\n')
        out.write(f"Q3,head,{fins[2]},Əliyev,Rauf,,1970-01-01,male,,,ZAN-002,Bakı,,,,\r\n")
        out.write(f'Q4,head,{fins[3]},Əliyev,Rauf,,1970-01-01,male,,,ZAN-002,"Bakı",,,,\r\n')
    before = stored(database_url)
    result = LegacyImport(embedded.store, OPERATOR).run(file, report=tmp_path / "r.csv")
    assert_accounted(result, database_url, before)
    lines = sorted(int(r["line"]) for r in report_rows(tmp_path / "r.csv"))
    assert result.rows_read == result.rows_registered + len(lines) == 4
    assert lines == [3, 4, 5]  # the rows the open quote swallowed are named, not lost
    assert embedded.services.registry.get_person(fins[0])


def test_a_file_with_carriage_returns_alone_is_read_line_by_line(
    embedded: Container, tmp_path: Path
) -> None:
    fins = [random_fin() for _ in range(3)]
    file = write(tmp_path / "cr.csv", [row(f"R{i}", fin) for i, fin in enumerate(fins)])
    file.write_bytes(file.read_bytes().replace(b"\r\n", b"\r"))  # an old Mac export
    result = LegacyImport(embedded.store, OPERATOR).run(file)
    assert (result.rows_read, result.households_registered) == (3, 3)


def test_the_spool_of_a_killed_import_is_removed_by_the_next_one(
    embedded: Container, tmp_path: Path
) -> None:
    import tempfile

    process = subprocess.Popen(["true"])
    process.wait()  # a process id that is gone
    stale = Path(tempfile.gettempdir()) / f"reintegration-import-{process.pid}-x1"
    stale.mkdir()
    (stale / "rows.sqlite").write_bytes(b"personal data")
    LegacyImport(embedded.store, OPERATOR).run(write(tmp_path / "a.csv", [row("H", random_fin())]))
    assert not stale.exists()
