"""Loading the existing IDP registry from a CSV export, whatever state the export is in.

Every row ends in exactly one of three states, and the figures printed are counted from what
the event store holds after each commit, never from what was attempted:

- **registered**: its household was recorded (the household and all its members, in one
  transaction: a household is all or nothing);
- **skipped**: its household was already registered with the same details (a second run, or a
  run after one that was killed, registers nobody twice);
- **rejected**: written to the report with its line, household, FIN and reason.

How a file is read:

1. The whole file is decoded first (UTF-8 with or without BOM, or a legacy code page given
   with ``--encoding``: Windows-1251 or Windows-1254). A byte that does not decode refuses the
   file, naming its line and byte, before anything is written.
2. Its rows are parsed as CSV and spooled into a temporary SQLite file, so that the rows of a
   household may come in any order, in bounded memory. A row that does not parse (a broken
   quote, a cell or line larger than the limits, more or fewer cells than the header) is
   rejected, never a traceback.
3. Households are taken in turn, validated by the same rules as the API (domain/text.py for
   every text, domain/registry.py for the rest), and saved a batch to a transaction. A
   household that conflicts with another (a FIN registered meanwhile) is rejected alone; the
   others of its batch are saved again from scratch.

The report neutralises cells a spreadsheet would run as formulas (the OWASP rule for CSV
injection: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed
with a single quote).
"""

from __future__ import annotations

import codecs
import csv
import marshal
import os
import re
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg.sql import SQL, Identifier

from domain import text
from domain.base import Actor, CommandContext, DomainError, FieldError, ValidationFailed, acting_as
from domain.registry import (
    HOUSING_CONDITIONS,
    MAX_MEMBERS,
    RELATIONSHIPS,
    VULNERABILITIES,
    Household,
    NewMember,
    Person,
    RegisterHousehold,
    register_household,
)
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
    "qadin": "female",
    "m": "male",
    "male": "male",
    "kişi": "male",
    "kisi": "male",
}
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "windows-1251": "cp1251",
    "cp1251": "cp1251",
    "windows-1254": "cp1254",
    "cp1254": "cp1254",
}
MAX_LINE_BYTES = 64 * 1024
"""A physical line longer than this is not read (its row is rejected): the longest legitimate
row, sixteen cells at their documented maximum lengths, is well under it."""
MAX_CELL_CHARS = 4 * 1024
"""A cell longer than this rejects its row (the longest field is 500 characters); it also
bounds how many lines a broken quote can swallow."""
MAX_REF_CHARS = 100
CR = b"\r"
MAX_REPORT_CELL = 200
SOURCE = "legacy registry import"

# Exit codes of `reintegration import registry`, documented in the README.
EXIT_OK = 0
EXIT_ROWS_REJECTED = 3
EXIT_FILE_REFUSED = 4


class FileRefused(Exception):
    """The file cannot be imported at all (a one-line reason): nothing was written."""


BadFile = FileRefused  # the name the command line used before


@dataclass
class Rejection:
    line: int
    household_ref: str
    fin: str
    reason: str


@dataclass
class ImportResult:
    """What the store holds after the import, row by row. ``rejected`` keeps at most the
    first thousand rejections in memory; every one is in the report."""

    rows_read: int = 0
    households_registered: int = 0
    persons_registered: int = 0
    households_already_registered: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rows_registered(self) -> int:
        return self.persons_registered

    @property
    def accounted_for(self) -> bool:
        """Every row ended in exactly one of the three states."""
        return self.rows_registered + self.rows_skipped + self.rows_rejected == self.rows_read

    @property
    def exit_code(self) -> int:
        return EXIT_ROWS_REJECTED if self.rows_rejected else EXIT_OK


@dataclass
class Row:
    line: int
    values: dict[str, str]
    problem: str | None = None

    @property
    def ref(self) -> str:
        return self.values.get("household_ref", "")

    @property
    def fin(self) -> str:
        return self.values.get("fin", "")


# --- reading ------------------------------------------------------------------------------


def decoded_lines(stream: IO[bytes], encoding: str, oversized: set[int]) -> Iterator[str]:
    """The file's lines, decoded strictly. A line ends with a line feed, a carriage return and
    line feed, or a carriage return alone (old exports). A line longer than MAX_LINE_BYTES is
    noted in ``oversized`` and yields an empty line in its place (its row is rejected). A byte
    that does not decode raises :class:`FileRefused` naming its line and byte."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    number = 0  # lines yielded so far: the csv reader counts the same
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise FileRefused(
                    f"line {number}: the file ends inside a character "
                    f"(not valid {_encoding_name(encoding)})"
                ) from None
            return
        start = offset
        offset += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            number += 1
            oversized.add(number)
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                raw = stream.readline(MAX_LINE_BYTES)
                offset += len(raw)
            decoder.reset()
            yield "\n"
            continue
        try:
            line = decoder.decode(raw)
        except UnicodeDecodeError as exc:
            where = number + 1 + raw[: exc.start].count(CR)  # lines before it, bare CRs too
            raise FileRefused(
                f"line {where}, byte {start + exc.start}: "
                f"not valid {_encoding_name(encoding)} "
                "(give the file's encoding with --encoding windows-1251 or windows-1254)"
            ) from None
        if number == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if "\r" in line.rstrip("\r\n"):  # carriage returns alone end lines too
            pieces = line.replace("\r\n", "\n").split("\r")
            for piece in pieces[:-1]:
                number += 1
                yield piece + "\n"
            line = pieces[-1]
        number += 1
        yield line


def _encoding_name(encoding: str) -> str:
    return {"cp1251": "Windows-1251", "cp1254": "Windows-1254"}.get(encoding, "UTF-8")


def rows(stream: IO[bytes], encoding: str) -> tuple[list[str], Iterator[Row]]:
    """The header's columns and the file's rows, each row with its first line and, when it
    could not be parsed, why."""
    oversized: set[int] = set()
    lines = decoded_lines(stream, encoding, oversized)
    reader = csv.reader(lines, strict=True)
    previous_limit = csv.field_size_limit(MAX_CELL_CHARS)  # restored when the rows are read
    header_line = 0
    while True:
        try:
            header = next(reader)
        except StopIteration:
            csv.field_size_limit(previous_limit)
            raise FileRefused("the file is empty: no header row") from None
        except csv.Error as exc:
            csv.field_size_limit(previous_limit)
            raise FileRefused(
                f"line {reader.line_num}: the header does not parse ({exc})"
            ) from None
        header_line = reader.line_num
        if any(cell.strip() for cell in header):
            break
    columns = [c.strip().lower() for c in header]
    refusal = _header_problem(columns)
    if refusal is not None:
        csv.field_size_limit(previous_limit)
        raise FileRefused(f"line {header_line}: {refusal}")

    def parsed() -> Iterator[Row]:
        try:
            yield from read()
        finally:
            csv.field_size_limit(previous_limit)

    def read() -> Iterator[Row]:
        first = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield from _malformed(first, reader.line_num, {}, _parse_problem(str(exc)))
                first = reader.line_num + 1
                continue
            last = reader.line_num
            line, first = first, last + 1
            if any(number in oversized for number in range(line, last + 1)):
                yield from _malformed(
                    line, last, {}, f"the line is longer than {MAX_LINE_BYTES} bytes"
                )
                continue
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (or one of empty cells) is no row
            values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False)}
            if len(cells) != len(columns):
                why = f"the row has {len(cells)} cells; the header has {len(columns)}"
                yield from _malformed(line, last, values, why)
                continue
            yield Row(line, values)

    return columns, parsed()


def _header_problem(columns: list[str]) -> str | None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        return f"missing columns: {', '.join(missing)} (expected {', '.join(COLUMNS)})"
    named = [c for c in columns if c]
    if len(set(named)) != len(named):
        return "a column is named twice"
    unknown = [c for c in named if c not in COLUMNS]
    if unknown:
        return (
            f"unknown columns: {', '.join(c[:40] for c in unknown[:5])} (a misspelt column "
            f"would be dropped unread; the columns are {', '.join(COLUMNS)})"
        )
    return None


def _parse_problem(message: str) -> str:
    if "field limit" in message:
        return f"a cell is longer than {MAX_CELL_CHARS} characters (a quote left open?)"
    return f"the row does not parse as CSV ({message})"


def _malformed(first: int, last: int, values: dict[str, str], reason: str) -> Iterator[Row]:
    """A record that cannot be read, as one rejected row per line it spans: a line swallowed
    by a quote left open may have held a row of its own, and is accounted for."""
    yield Row(first, values, reason + (f" (lines {first} to {last})" if last > first else ""))
    for line in range(first + 1, last + 1):
        yield Row(line, {}, f"part of the record at line {first}, which cannot be read")


# --- the spool: rows grouped by household in bounded memory -------------------------------

SPOOL_PREFIX = "reintegration-import-"


def remove_stale_spools() -> None:
    """Remove the spools of imports that were killed (they hold the personal data of their
    file): a spool folder is named after its process, and a process that is gone is done."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*-*"):
        pid = folder.name[len(SPOOL_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue  # another user's process, alive


class Spool:
    """The rows of the file in a temporary SQLite database, read back one household at a
    time (the rows of a household in the order of the file)."""

    def __init__(self, folder: Path) -> None:
        self.db = sqlite3.connect(folder / "rows.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(
            "CREATE TABLE rows (household_ref TEXT NOT NULL, line INTEGER NOT NULL, "
            "row_values BLOB NOT NULL, problem TEXT)"
        )
        self.db.execute(
            "CREATE TABLE rejected (line INTEGER NOT NULL, household_ref TEXT NOT NULL, "
            "fin TEXT NOT NULL, reason TEXT NOT NULL)"
        )

    def fill(self, found: Iterator[Row], on_row: Callable[[], None] | None = None) -> int:
        count = 0
        self.db.execute("BEGIN")
        batch: list[tuple[str, int, bytes, str | None]] = []
        for row in found:
            count += 1
            cells = [row.values.get(column, "") for column in COLUMNS]
            batch.append((row.ref, row.line, marshal.dumps(cells), row.problem))
            if len(batch) >= 5000:
                self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)
                batch.clear()
                if on_row is not None:
                    on_row()
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)
        self.db.execute("CREATE INDEX rows_by_household ON rows (household_ref, line)")
        self.db.execute("COMMIT")
        return count

    def household_count(self) -> int:
        return int(self.db.execute("SELECT count(DISTINCT household_ref) FROM rows").fetchone()[0])

    def households(self) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Each household's ref, number of rows, and rows (streamed: a household of a
        million rows is never in memory)."""
        counts = self.db.execute(
            "SELECT household_ref, count(*) FROM rows GROUP BY household_ref ORDER BY household_ref"
        )
        cursor = self.db.cursor()
        for ref, size in counts:
            cursor.execute(
                "SELECT line, row_values, problem FROM rows WHERE household_ref = ? ORDER BY line",
                (ref,),
            )
            yield (
                ref,
                int(size),
                (
                    Row(line, dict(zip(COLUMNS, marshal.loads(values), strict=True)), problem)
                    for line, values, problem in cursor
                ),
            )

    def reject(self, rejections: list[Rejection]) -> None:
        self.db.executemany(
            "INSERT INTO rejected VALUES (?, ?, ?, ?)",
            [(r.line, r.household_ref, r.fin, r.reason) for r in rejections],
        )

    def rejections(self) -> Iterator[tuple[int, str, str, str]]:
        yield from self.db.execute(
            "SELECT line, household_ref, fin, reason FROM rejected ORDER BY line"
        )

    def close(self) -> None:
        self.db.close()


# --- turning rows into a registration -----------------------------------------------------


class RowProblem(Exception):
    """A value the importer cannot read, in one row."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


def _date(value: str, column: str) -> date:
    """YYYY-MM-DD, or DD.MM.YYYY as older exports write it."""
    try:
        if len(value) != 10 or not value.isascii():
            pass
        elif value[4] == "-" and value[7] == "-":
            return date.fromisoformat(value)
        elif value[2] == "." and value[5] == "." and value.replace(".", "").isdigit():
            return date(int(value[6:]), int(value[3:5]), int(value[:2]))
    except ValueError:
        pass
    raise RowProblem(column, "not a date (YYYY-MM-DD or DD.MM.YYYY)")


def _keyword(value: str, known: dict[str, str]) -> str:
    """A code word in any letter case (``KİŞİ``, ``QADIN``, ``Child``) as the code it means;
    unchanged when it means none (the domain then says what it may be)."""
    if value in known:
        return known[value]
    for form in text.keyword_forms(value):
        if form in known:
            return known[form]
    return value


def _codes(codes: tuple[str, ...]) -> dict[str, str]:
    return {code: code for code in codes}


RELATIONSHIP_CODES = _codes(RELATIONSHIPS)
HOUSING_CONDITION_CODES = _codes(HOUSING_CONDITIONS)
VULNERABILITY_CODES = _codes(VULNERABILITIES)


@dataclass
class Prepared:
    """A household ready to save: its rows, its aggregates, and the ids that prove it saved."""

    ref: str
    rows: list[Row]
    aggregates: list[Any]
    household_id: uuid.UUID
    person_ids: list[uuid.UUID]

    @property
    def events(self) -> int:
        return sum(len(a.pending_events) for a in self.aggregates)


def build(rows: list[Row], today: date) -> list[Any]:
    """The household's aggregates, validated by the domain: ``[household, *persons]`` with
    the IDP statuses, housing condition and vulnerabilities the rows record."""
    problems: list[FieldError] = []
    members = []
    for i, row in enumerate(rows):
        v = row.values
        try:
            born = _date(v.get("birth_date", ""), "birth_date")
        except RowProblem as exc:
            problems.append(FieldError(f"members[{i}].birth_date", exc.reason))
            born = date.min
        members.append(
            NewMember(
                fin=v.get("fin", ""),
                first_name=v.get("first_name", ""),
                last_name=v.get("last_name", ""),
                patronymic=v.get("patronymic") or None,
                birth_date=born,
                sex=_keyword(v.get("sex", ""), SEX),
                relationship=_keyword(v.get("relationship", ""), RELATIONSHIP_CODES),
                idp_certificate_number=v.get("idp_certificate_number") or None,
                registered_address=v.get("registered_address") or None,
            )
        )
    head = next(
        (
            r
            for r in rows
            if _keyword(r.values.get("relationship", ""), RELATIONSHIP_CODES) == "head"
        ),
        rows[0],
    )
    h = head.values
    command = RegisterHousehold(
        members,
        h.get("origin_settlement_code", ""),
        h.get("current_address", ""),
        h.get("contact_phone") or None,
    )
    try:
        household, persons = register_household(command, today)
    except ValidationFailed as exc:
        read = {p.field for p in problems}
        raise ValidationFailed(problems + [e for e in exc.errors if e.field not in read]) from None
    if problems:
        raise ValidationFailed(problems)
    for i, (person, row) in enumerate(zip(persons, rows, strict=True)):
        since = row.values.get("idp_status_since")
        if since:
            try:
                effective = _date(since, "idp_status_since")
            except RowProblem as exc:
                raise ValidationFailed(
                    [FieldError(f"members[{i}].idp_status_since", exc.reason)]
                ) from None
            try:
                person.grant_idp_status(SOURCE, effective, person.idp_certificate_number, today)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    [FieldError(f"members[{i}].idp_status_since", e.reason) for e in exc.errors]
                ) from None
    condition = h.get("housing_condition")
    if condition:
        household.record_housing_condition(_keyword(condition, HOUSING_CONDITION_CODES), SOURCE)
    for vulnerability in dict.fromkeys(
        _keyword(v.strip(), VULNERABILITY_CODES)
        for v in h.get("vulnerabilities", "").split(";")
        if v.strip()
    ):
        household.record_vulnerability(vulnerability, None, SOURCE)
    return [household, *persons]


# --- the import ---------------------------------------------------------------------------


# One transaction holds at most this many events: it holds the event store's table lock, so
# commands of a running service wait for it (about 50 ms). Larger gains little (measured: 300
# events 3,587 persons/s, 1,000 events 3,878, 3,000 events 3,813): the import is bound by the
# domain work in Python, not by the inserts.
MAX_EVENTS_PER_TRANSACTION = 1000


class LegacyImport:
    def __init__(
        self,
        app: ReintegrationApplication,
        actor: Actor,
        batch_households: int = 200,
        encoding: str = "utf-8",
    ) -> None:
        if encoding.lower() not in ENCODINGS:
            raise FileRefused(f"unknown encoding {encoding!r}: utf-8, windows-1251 or windows-1254")
        self.app = app
        self.actor = actor
        self.batch_households = batch_households
        self.encoding = ENCODINGS[encoding.lower()]
        self.run_id = str(uuid.uuid4())
        self.today = date.today()
        self.result = ImportResult()  # as far as the latest run got, even when it failed

    def run(
        self,
        path: Path,
        on_progress: Callable[[str, int, int], None] | None = None,
        report: Path | None = None,
    ) -> ImportResult:
        """Import the file; write the rejected rows to ``report`` (when given) in line order.
        ``on_progress(phase, done, total)`` follows the reading (bytes) and the registering
        (households)."""
        result = self.result = ImportResult()
        size = path.stat().st_size
        remove_stale_spools()
        with tempfile.TemporaryDirectory(prefix=f"{SPOOL_PREFIX}{os.getpid()}-") as folder:
            spool = Spool(Path(folder))
            try:
                with path.open("rb") as stream:
                    _, found = rows(stream, self.encoding)
                    progress = (
                        (lambda: on_progress("reading", stream.tell(), size))
                        if on_progress
                        else None
                    )
                    result.rows_read = spool.fill(found, progress)
                if on_progress:
                    on_progress("reading", size, size)
            except BaseException:
                spool.close()  # refused while reading: nothing written, no report
                raise
            try:
                self._register(spool, result, on_progress)
                self._analyze()
            finally:
                if report is not None:
                    write_report(spool.rejections(), report)
                spool.close()
        return result

    # --- households -----------------------------------------------------------------------

    def _register(
        self,
        spool: Spool,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> None:
        total = spool.household_count()
        done = 0
        batch: list[tuple[str, list[Row]]] = []
        for ref, count, household_rows in spool.households():
            done += 1
            held = self._admissible(ref, count, household_rows, spool, result)
            if held is None:
                continue
            batch.append((ref, held))
            if len(batch) >= self.batch_households:
                self._import_batch(batch, spool, result)
                batch = []
                if on_progress:
                    on_progress("registering", done, total)
        if batch:
            self._import_batch(batch, spool, result)
        if on_progress:
            on_progress("registering", total, total)

    def _admissible(
        self,
        ref: str,
        count: int,
        household_rows: Iterator[Row],
        spool: Spool,
        result: ImportResult,
    ) -> list[Row] | None:
        """The household's rows, or None when it cannot be registered as it stands in the file
        (its rows are then rejected, streamed to the report: a household of a million rows is
        never held in memory)."""
        if not ref:
            self._reject_each(spool, result, household_rows, "household_ref is required")
            return None
        if count > MAX_MEMBERS:
            self._reject_each(
                spool,
                result,
                household_rows,
                f"the household has {count} rows; a household has at most {MAX_MEMBERS} members",
            )
            return None
        held = list(household_rows)
        broken = next((r for r in held if r.problem is not None), None)
        if broken is not None:
            reasons = {
                r.line: r.problem
                or f"rejected with its household (line {broken.line}: {broken.problem})"
                for r in held
            }
            self._reject_rows(spool, result, ref, held, reasons)
            return None
        errors: list[FieldError] = []
        text.clean(errors, "household_ref", ref, text.IDENTIFIER.at_most(MAX_REF_CHARS))
        if errors:
            reason = f"household_ref: {errors[0].reason}"
            self._reject_rows(
                spool, result, ref, held, dict.fromkeys((r.line for r in held), reason)
            )
            return None
        return held

    def _import_batch(
        self, batch: list[tuple[str, list[Row]]], spool: Spool, result: ImportResult
    ) -> None:
        """Validate a batch of households, skip those already registered, save the rest a
        chunk to a transaction, and count what the store holds."""
        context = CommandContext(self.actor, self.run_id, f"import:{batch[0][1][0].line}")
        with acting_as(context):
            candidates = []
            for ref, household_rows in batch:
                prepared = self._prepare(ref, household_rows, spool, result)
                if prepared is not None:
                    candidates.append(prepared)
            fresh = self._classify_existing(candidates, spool, result)
            for chunk in _chunks(fresh, MAX_EVENTS_PER_TRANSACTION):
                self._save(chunk, spool, result)

    def _prepare(
        self, ref: str, household_rows: list[Row], spool: Spool, result: ImportResult
    ) -> Prepared | None:
        try:
            aggregates = build(household_rows, self.today)
        except ValidationFailed as exc:
            self._reject_rows(spool, result, ref, household_rows, _reasons(household_rows, exc))
            return None
        except DomainError as exc:
            reason = str(exc)
            self._reject_rows(
                spool,
                result,
                ref,
                household_rows,
                dict.fromkeys((r.line for r in household_rows), reason),
            )
            return None
        household: Household = aggregates[0]
        return Prepared(
            ref, household_rows, aggregates, household.id, [p.id for p in aggregates[1:]]
        )

    def _classify_existing(
        self, candidates: list[Prepared], spool: Spool, result: ImportResult
    ) -> list[Prepared]:
        """Households none of whose members is registered (to save); the others are skipped
        when registered with the same details, else rejected. A FIN that two households of
        the file share goes to the first."""
        registered = self._registrations([pid for p in candidates for pid in p.person_ids])
        if registered:  # the households they were registered in, for the comparison
            homes = {event.household_id for event in registered.values()}
            registered.update(self._registrations(list(homes)))
        fresh: list[Prepared] = []
        claimed: dict[uuid.UUID, int] = {}
        for prepared in candidates:
            known = [pid for pid in prepared.person_ids if pid in registered]
            twice = [pid for pid in prepared.person_ids if pid in claimed]
            if twice:
                self._reject_household(
                    spool,
                    result,
                    prepared,
                    f"a FIN of this household is also in the household at line {claimed[twice[0]]}",
                )
            elif not known:
                fresh.append(prepared)
                for pid in prepared.person_ids:
                    claimed[pid] = prepared.rows[0].line
            elif len(known) == len(prepared.person_ids) and not self._differences(
                prepared, registered
            ):
                result.households_already_registered += 1
                result.rows_skipped += len(prepared.rows)
            else:
                self._reject_household(
                    spool, result, prepared, self._conflict(prepared, registered)
                )
        return fresh

    def _differences(self, prepared: Prepared, registered: dict[uuid.UUID, Any]) -> list[str]:
        """What differs between the household in the file and its registration in the store
        (field names only: the values are personal data)."""
        household: Household = prepared.aggregates[0]
        persons: list[Person] = prepared.aggregates[1:]
        homes = {registered[p.id].household_id for p in persons}
        if len(homes) != 1:
            return ["household"]
        registration = registered.get(homes.pop())
        differences: list[str] = []
        if registration is None or {m.person_id for m in registration.members} != {
            p.id for p in persons
        }:
            return ["members"]
        for name in ("origin_settlement_code", "current_address", "contact_phone"):
            if getattr(registration, name) != getattr(household, name):
                differences.append(name)
        for person in persons:
            stored = registered[person.id]
            for name in (
                "first_name",
                "last_name",
                "patronymic",
                "birth_date",
                "sex",
                "idp_certificate_number",
                "registered_address",
            ):
                if getattr(stored, name) != getattr(person, name) and name not in differences:
                    differences.append(name)
        return differences

    def _conflict(self, prepared: Prepared, registered: dict[uuid.UUID, Any]) -> str:
        known = [pid for pid in prepared.person_ids if pid in registered]
        if len(known) < len(prepared.person_ids):
            lines = [
                r.line
                for r, pid in zip(prepared.rows, prepared.person_ids, strict=True)
                if pid in registered
            ]
            return (
                f"{len(known)} of its {len(prepared.person_ids)} members are already registered "
                f"in another household (line {', '.join(map(str, lines))})"
            )
        return "already registered with other details: " + ", ".join(
            self._differences(prepared, registered)
        )

    def _save(self, chunk: list[Prepared], spool: Spool, result: ImportResult) -> None:
        """One transaction for the chunk. If it conflicts (someone registered one of its FINs
        meanwhile), each household is built again from its rows and saved alone, so that the
        conflict takes only its own household down."""
        try:
            self.app.save(*[a for p in chunk for a in p.aggregates])
        except IntegrityError:
            for prepared in chunk:
                again = self._prepare(prepared.ref, prepared.rows, spool, result)
                if again is None:
                    continue
                try:
                    self.app.save(*again.aggregates)
                except IntegrityError:
                    registered = self._registrations(again.person_ids)
                    registered.update(
                        self._registrations([e.household_id for e in registered.values()])
                    )
                    if all(pid in registered for pid in again.person_ids) and not self._differences(
                        again, registered
                    ):
                        result.households_already_registered += 1
                        result.rows_skipped += len(again.rows)
                    else:
                        self._reject_household(
                            spool, result, again, "a member's FIN was registered while importing"
                        )
                    continue
                self._count_stored([again], spool, result)
            return
        self._count_stored(chunk, spool, result)

    def _count_stored(self, saved: list[Prepared], spool: Spool, result: ImportResult) -> None:
        """Count, from the store, what a commit recorded: a household whose registration is
        not there is reported, not counted."""
        stored = self._stored_ids([p.household_id for p in saved])
        for prepared in saved:
            if prepared.household_id in stored:
                result.households_registered += 1
                result.persons_registered += len(prepared.rows)
            else:
                self._reject_household(
                    spool, result, prepared, "not found in the event store after its commit"
                )

    # --- the event store ------------------------------------------------------------------

    def _stored_ids(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        recorder: Any = self.app.recorder
        statement = SQL(
            "SELECT originator_id FROM {} WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (ids,))
            return {r["originator_id"] for r in cur.fetchall()}

    def _registrations(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """The registration events (version 1) of those of ``ids`` the store holds."""
        if not ids:
            return {}
        recorder: Any = self.app.recorder
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (ids,))
            found = cur.fetchall()
        return {
            r["originator_id"]: self.app.mapper.to_domain_event(
                StoredEvent(
                    r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                )
            )
            for r in found
        }

    def _analyze(self) -> None:
        """Fresh planner statistics after a bulk load: without them PostgreSQL can take a
        freshly filled events table for a handful of aggregates and plan every lookup of one
        aggregate as a parallel scan (measured ten times slower)."""
        recorder: Any = self.app.recorder
        with recorder.datastore.get_connection() as conn:
            conn.execute(SQL("ANALYZE {}").format(Identifier(recorder.events_table_name)))

    # --- rejections -----------------------------------------------------------------------

    def _reject_household(
        self, spool: Spool, result: ImportResult, prepared: Prepared, reason: str
    ) -> None:
        self._reject_rows(
            spool,
            result,
            prepared.ref,
            prepared.rows,
            dict.fromkeys((r.line for r in prepared.rows), reason),
        )

    def _reject_rows(
        self,
        spool: Spool,
        result: ImportResult,
        ref: str,
        rows_: list[Row],
        reasons: dict[int, str],
    ) -> None:
        rejections = [Rejection(r.line, ref, r.fin, reasons[r.line]) for r in rows_]
        self._record(spool, result, rejections)

    def _reject_each(
        self, spool: Spool, result: ImportResult, rows_: Iterator[Row], reason: str
    ) -> None:
        batch: list[Rejection] = []
        for row in rows_:
            batch.append(Rejection(row.line, row.ref, row.fin, row.problem or reason))
            if len(batch) >= 1000:
                self._record(spool, result, batch)
                batch = []
        self._record(spool, result, batch)

    @staticmethod
    def _record(spool: Spool, result: ImportResult, rejections: list[Rejection]) -> None:
        spool.reject(rejections)
        result.rows_rejected += len(rejections)
        room = 1000 - len(result.rejected)
        if room > 0:
            result.rejected.extend(rejections[:room])


def _reasons(household_rows: list[Row], exc: ValidationFailed) -> dict[int, str]:
    """Each row's reason: the errors of its own member, or of the household (on the head's
    row), and for the others of the household a pointer to the row that was wrong."""
    own: dict[int, list[str]] = {}
    general: list[str] = []
    for error in exc.errors:
        index = _member_index(error.field)
        if index is not None and index < len(household_rows):
            field_name = error.field.split(".", 1)[1] if "." in error.field else error.field
            own.setdefault(index, []).append(f"{field_name}: {error.reason}")
        else:
            general.append(f"{error.field}: {error.reason}")
    reasons: dict[int, str] = {}
    first_wrong = min(own) if own else 0
    for i, row in enumerate(household_rows):
        mine = own.get(i, [])
        if i == first_wrong:
            mine = mine + general
        if mine:
            reasons[row.line] = "; ".join(mine)
    pointer = household_rows[first_wrong].line
    for row in household_rows:
        reasons.setdefault(row.line, f"rejected with its household (see line {pointer})")
    return reasons


def _member_index(field_name: str) -> int | None:
    if not field_name.startswith("members["):
        return None
    try:
        return int(field_name[len("members[") : field_name.index("]")])
    except ValueError:
        return None


def _chunks(prepared: list[Prepared], max_events: int) -> Iterator[list[Prepared]]:
    chunk: list[Prepared] = []
    events = 0
    for item in prepared:
        count = item.events
        if chunk and events + count > max_events:
            yield chunk
            chunk, events = [], 0
        chunk.append(item)
        events += count
    if chunk:
        yield chunk


# --- the report ---------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def neutralise(cell: object) -> str:
    """A report cell that no spreadsheet runs as a formula (OWASP, CSV injection): control
    characters replaced, at most MAX_REPORT_CELL characters, and a leading ``=``, ``+``,
    ``-``, ``@``, tab or carriage return (even after spaces) prefixed with a single quote."""
    value = str(cell)
    if value.lstrip(" ").startswith(FORMULA_STARTS):
        value = "'" + value
    value = CONTROL.sub("\ufffd", value)
    if len(value) > MAX_REPORT_CELL:
        value = value[:MAX_REPORT_CELL] + "…"
    return value


def write_report(rejections: Iterator[tuple[int, str, str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(["line", "household_ref", "fin", "reason"])
        for line, ref, fin, reason in rejections:
            writer.writerow([line, neutralise(ref), neutralise(fin), neutralise(reason)])
