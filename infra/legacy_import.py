"""Loading the existing IDP registry from a CSV export.

One row per person; the rows of a household are consecutive and share ``household_ref``.
Households are validated by the same domain rules as the API and saved in batches (one
transaction per batch). A household whose members are already in the store is skipped, so a
second run registers nobody twice. A rejected household does not stop the import: each of its
rows goes to the report with the reason.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO, cast

from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL, Identifier

from domain.base import Actor, CommandContext, DomainError, ValidationFailed, acting_as
from domain.registry import NewMember, RegisterHousehold, person_id_for, register_household
from infra.application import ReintegrationApplication

COLUMNS = (
    "household_ref",
    "relationship",
    "fin",
    "last_name",
    "first_name",
    "patronymic",
    "birth_date",
    "sex",
    "idp_certificate_number",
    "idp_status_since",
    "origin_settlement_code",
    "current_address",
    "registered_address",
    "housing_condition",
    "vulnerabilities",
    "contact_phone",
)
REQUIRED = ("household_ref", "relationship", "fin", "last_name", "first_name", "birth_date", "sex")
SEX = {
    "f": "female",
    "female": "female",
    "qadın": "female",
    "m": "male",
    "male": "male",
    "kişi": "male",
}


@dataclass
class Row:
    line: int
    values: dict[str, str]


@dataclass
class Rejection:
    line: int
    household_ref: str
    fin: str
    reason: str


@dataclass
class ImportResult:
    households_registered: int = 0
    persons_registered: int = 0
    households_already_registered: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejected)


class BadFile(Exception):
    """The file is not a registry export this importer understands (a one-line reason)."""


def households(stream: TextIO) -> Iterator[tuple[str, list[Row]]]:
    """Consecutive rows grouped by household_ref."""
    reader = csv.DictReader(stream)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise BadFile(f"missing columns: {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    current: str | None = None
    group: list[Row] = []
    for values in reader:
        row = Row(reader.line_num, {k: (v or "").strip() for k, v in values.items() if k})
        ref = row.values["household_ref"]
        if ref != current and group:
            yield current or "", group
            group = []
        current = ref
        group.append(row)
    if group:
        yield current or "", group


def _date(text: str, column: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RowProblem(column, f"{text!r} is not a date (YYYY-MM-DD)") from None


class RowProblem(Exception):
    """A value the importer cannot read (reported for the household's rows)."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")


def _command(rows: list[Row]) -> RegisterHousehold:
    head = next((r for r in rows if r.values["relationship"] == "head"), rows[0])
    members = []
    for r in rows:
        v = r.values
        sex = SEX.get(v["sex"].lower(), v["sex"].lower())
        members.append(
            NewMember(
                fin=v["fin"],
                first_name=v["first_name"],
                last_name=v["last_name"],
                patronymic=v.get("patronymic") or None,
                birth_date=_date(v["birth_date"], "birth_date"),
                sex=sex,
                relationship=v["relationship"],
                idp_certificate_number=v.get("idp_certificate_number") or None,
                registered_address=v.get("registered_address") or None,
            )
        )
    return RegisterHousehold(
        members,
        head.values.get("origin_settlement_code", ""),
        head.values.get("current_address", ""),
        head.values.get("contact_phone") or None,
    )


class LegacyImport:
    def __init__(
        self, app: ReintegrationApplication, actor: Actor, batch_households: int = 200
    ) -> None:
        self.app = app
        self.actor = actor
        self.batch_households = batch_households
        self.run_id = str(uuid.uuid4())

    def run(self, path: Path, on_progress: Callable[[int], None] | None = None) -> ImportResult:
        result = ImportResult()
        seen: set[str] = set()
        batch: list[tuple[str, list[Row]]] = []
        with path.open(encoding="utf-8-sig", newline="") as stream:
            for ref, rows in households(stream):
                if ref in seen:
                    self._reject(
                        result, ref, rows, "rows of this household are not consecutive in the file"
                    )
                    continue
                seen.add(ref)
                batch.append((ref, rows))
                if len(batch) >= self.batch_households:
                    self._import_batch(batch, result, path.name)
                    batch = []
                    if on_progress:
                        on_progress(cast(Any, stream).buffer.tell())
            if batch:
                self._import_batch(batch, result, path.name)
            if on_progress:
                on_progress(path.stat().st_size)
        self._analyze()
        return result

    def _analyze(self) -> None:
        """Fresh planner statistics after a bulk load: without them PostgreSQL can take a
        freshly filled events table for a handful of aggregates and plan every lookup of one
        aggregate as a parallel scan (measured ten times slower)."""
        recorder: Any = self.app.recorder
        with recorder.datastore.get_connection() as conn:
            conn.execute(SQL("ANALYZE {}").format(Identifier(recorder.events_table_name)))

    def _reject(self, result: ImportResult, ref: str, rows: list[Row], reason: str) -> None:
        for r in rows:
            result.rejected.append(Rejection(r.line, ref, r.values.get("fin", ""), reason))

    def _existing(self, person_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        recorder: Any = self.app.recorder
        statement = SQL(
            "SELECT originator_id FROM {} WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (person_ids,))
            return {r["originator_id"] for r in cur.fetchall()}

    def _import_batch(
        self, batch: list[tuple[str, list[Row]]], result: ImportResult, source: str
    ) -> None:
        ids = [
            person_id_for(r.values["fin"]) for _, rows in batch for r in rows if r.values.get("fin")
        ]
        existing = self._existing(ids)
        prepared: list[tuple[str, list[Row], list[Any]]] = []
        context = CommandContext(self.actor, self.run_id, f"import:{source}:{batch[0][1][0].line}")
        with acting_as(context):
            for ref, rows in batch:
                fins = [r.values.get("fin", "") for r in rows]
                known = [f for f in fins if person_id_for(f) in existing]
                if known and len(known) == len(fins):
                    result.households_already_registered += 1
                    continue
                if known:
                    self._reject(
                        result,
                        ref,
                        rows,
                        f"FIN {known[0]} is already registered in another household",
                    )
                    continue
                try:
                    aggregates = self._build(rows)
                except ValidationFailed as exc:
                    self._reject(
                        result, ref, rows, "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)
                    )
                    continue
                except (DomainError, RowProblem) as exc:
                    self._reject(result, ref, rows, str(exc))
                    continue
                prepared.append((ref, rows, aggregates))
        for chunk in _chunks(prepared):
            self._save_chunk(chunk, result)

    def _save_chunk(
        self, chunk: list[tuple[str, list[Row], list[Any]]], result: ImportResult
    ) -> None:
        try:
            self.app.save(*[a for _, _, aggregates in chunk for a in aggregates])
            saved = chunk
        except IntegrityError:
            saved = []
            for ref, rows, aggregates in chunk:  # someone registered one meanwhile: one by one
                try:
                    self.app.save(*aggregates)
                    saved.append((ref, rows, aggregates))
                except IntegrityError:
                    self._reject(result, ref, rows, "a member's FIN was registered while importing")
        for _, rows, _ in saved:
            result.households_registered += 1
            result.persons_registered += len(rows)

    def _build(self, rows: list[Row]) -> list[Any]:
        household, persons = register_household(_command(rows), date.today())
        today = date.today()
        for person, row in zip(persons, rows, strict=True):
            since = row.values.get("idp_status_since")
            if since:
                person.grant_idp_status(
                    "legacy registry import",
                    _date(since, "idp_status_since"),
                    person.idp_certificate_number,
                    today,
                )
        head = rows[0].values
        if head.get("housing_condition"):
            household.record_housing_condition(head["housing_condition"], "legacy registry import")
        for vulnerability in filter(
            None, (v.strip() for v in head.get("vulnerabilities", "").split(";"))
        ):
            household.record_vulnerability(vulnerability, None, "legacy registry import")
        return [household, *persons]


# One transaction holds at most this many events: it holds the event store's table lock, so
# commands of a running service wait for it (about 50 ms). Larger gains little (measured: 300
# events 3,587 persons/s, 1,000 events 3,878, 3,000 events 3,813): the import is bound by the
# domain work in Python, not by the inserts.
MAX_EVENTS_PER_TRANSACTION = 1000


def _chunks(
    prepared: list[tuple[str, list[Row], list[Any]]],
) -> Iterator[list[tuple[str, list[Row], list[Any]]]]:
    chunk: list[tuple[str, list[Row], list[Any]]] = []
    events = 0
    for item in prepared:
        count = sum(len(a.pending_events) for a in item[2])
        if chunk and events + count > MAX_EVENTS_PER_TRANSACTION:
            yield chunk
            chunk, events = [], 0
        chunk.append(item)
        events += count
    if chunk:
        yield chunk


def write_report(result: ImportResult, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "household_ref", "fin", "reason"])
        for r in result.rejected:
            writer.writerow([r.line, r.household_ref, r.fin, r.reason])
