"""Reading a registry export for the legacy import, whatever state the export is in, and
writing its report.

1. The whole file is decoded first (UTF-8 with or without BOM, or a legacy code page given
   with ``--encoding``: Windows-1251 or Windows-1254). A byte that does not decode refuses the
   file, naming its line and byte, before anything is written.
2. Its rows are parsed as CSV and spooled into a temporary SQLite file, so that the rows of a
   household may come in any order, in bounded memory. A row that does not parse (a broken
   quote, a cell or line larger than the limits, more or fewer cells than the header) is
   rejected, never a traceback.
3. :class:`LegacyImport` hands the households to the use case
   (:class:`application.legacy_import.HouseholdImport`) and writes the report.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from application.legacy_import import (
    EXIT_FILE_REFUSED,
    EXIT_OK,
    EXIT_ROWS_REJECTED,
    HouseholdImport,
    ImportResult,
    Rejection,
)
from application.legacy_rows import COLUMNS, Row
from application.ports import EventStore
from domain.base import Actor, ValidationFailed
from domain.registry import normalise_fin
from infra.legacy_workers import ProcessWorkers, process_workers

__all__ = [
    "EXIT_FILE_REFUSED",
    "EXIT_OK",
    "EXIT_ROWS_REJECTED",
    "FileRefused",
    "ImportResult",
    "LegacyImport",
    "neutralise",
]

REQUIRED = ("household_ref", "relationship", "fin", "last_name", "first_name", "birth_date", "sex")
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
CR = b"\r"
WORKERS_FROM_BYTES = 256 * 1024
"""A smaller file is registered in this process: starting worker processes takes longer
than its domain work (about 1,000 rows)."""
MAX_REPORT_CELL = 200


class FileRefused(Exception):
    """The file cannot be imported at all (a one-line reason): nothing was written."""


BadFile = FileRefused  # the name the command line used before


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
            if oversized and any(number in oversized for number in range(line, last + 1)):
                yield from _malformed(
                    line, last, {}, f"the line is longer than {MAX_LINE_BYTES} bytes"
                )
                continue
            stripped = [cell.strip() for cell in cells]
            if not any(stripped):
                continue  # a blank line (or one of empty cells) is no row
            values = dict(zip(columns, stripped, strict=False))
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
NO_VALUES = ("",) * len(COLUMNS)  # a column the file does not have is empty


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
            "row_values BLOB NOT NULL, problem TEXT, fin TEXT)"
        )
        self.db.execute(
            "CREATE TABLE rejected (line INTEGER NOT NULL, household_ref TEXT NOT NULL, "
            "fin TEXT NOT NULL, reason TEXT NOT NULL)"
        )

    def fill(self, found: Iterator[Row], on_row: Callable[[], None] | None = None) -> int:
        count = 0
        self.db.execute("BEGIN")
        batch: list[tuple[str, int, bytes, str | None, str | None]] = []
        for row in found:
            count += 1
            cells = list(map(row.values.get, COLUMNS, NO_VALUES))
            batch.append((row.ref, row.line, marshal.dumps(cells), row.problem, _fin(row)))
            if len(batch) >= 5000:
                self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)", batch)
                batch.clear()
                if on_row is not None:
                    on_row()
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)", batch)
        self.db.execute("CREATE INDEX rows_by_household ON rows (household_ref, line)")
        self.shared_fins_known = False
        self.db.execute("COMMIT")
        return count

    def household_count(self) -> int:
        return int(self.db.execute("SELECT count(DISTINCT household_ref) FROM rows").fetchone()[0])

    def households(self) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Each household's ref, number of rows, and rows (streamed: a household of a
        million rows is never in memory)."""
        return self._households("")

    def households_apart(self, contested: bool) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Like :meth:`households`, only the households that share a FIN with another
        household of the file (``contested``), or only those that do not."""
        if not self.shared_fins_known:
            self.db.execute("CREATE TABLE contested (household_ref TEXT PRIMARY KEY) WITHOUT ROWID")
            self.db.execute(
                "INSERT INTO contested SELECT DISTINCT household_ref FROM rows WHERE fin IN "
                "(SELECT fin FROM rows WHERE fin IS NOT NULL GROUP BY fin "
                "HAVING min(household_ref) <> max(household_ref))"
            )
            self.shared_fins_known = True
        return self._households(
            f"WHERE household_ref {'' if contested else 'NOT '}IN (SELECT household_ref FROM contested)"
        )

    def _households(self, where: str) -> Iterator[tuple[str, int, Iterator[Row]]]:
        counts = self.db.execute(
            f"SELECT household_ref, count(*) FROM rows {where} "
            "GROUP BY household_ref ORDER BY household_ref"
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


def _fin(row: Row) -> str | None:
    """The row's FIN as the store keys its person (None when it is no valid FIN: its household
    is then rejected and claims no one)."""
    try:
        return normalise_fin(row.fin) if row.problem is None else None
    except ValidationFailed:
        return None


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


# --- the job ------------------------------------------------------------------------------


class LegacyImport:
    """`reintegration import registry FILE`: read the file into the spool (refusing it before
    anything is written when it cannot be read), then register its households through the
    use case, and write the report of rejected rows in line order."""

    def __init__(
        self,
        store: EventStore,
        actor: Actor,
        batch_households: int = 200,
        encoding: str = "utf-8",
        workers: int = 1,
        worker_settings: Any = None,
    ) -> None:
        """With ``workers`` > 1 and the ``worker_settings`` of the composition root (their
        database URL resolved), that many processes register the batches (see
        :mod:`infra.legacy_workers`); a file of a single batch is registered in this process."""
        if encoding.lower() not in ENCODINGS:
            raise FileRefused(f"unknown encoding {encoding!r}: utf-8, windows-1251 or windows-1254")
        self.importer = HouseholdImport(store, actor, batch_households)
        self.workers = workers if worker_settings is not None else 1
        self.worker_settings = worker_settings
        self.encoding = ENCODINGS[encoding.lower()]
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
        workers = self._workers() if size >= WORKERS_FROM_BYTES else None
        try:
            if workers is not None:
                workers.start()  # while the file is read
            return self._run(path, size, result, on_progress, report, workers)
        finally:
            if workers is not None:
                workers.close()

    def _run(
        self,
        path: Path,
        size: int,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None,
        report: Path | None,
        workers: ProcessWorkers | None,
    ) -> ImportResult:
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
                if (
                    workers is not None
                    and spool.household_count() <= self.importer.batch_households
                ):
                    workers.close()  # a single batch: registered here
                    workers = None
                self.importer.register(spool, spool, result, on_progress, workers)
            finally:
                if report is not None:
                    write_report(spool.rejections(), report)
                spool.close()
        return result

    def _workers(self) -> ProcessWorkers | None:
        if self.workers < 2:
            return None
        importer = self.importer
        return process_workers(
            self.workers,
            self.worker_settings,
            importer.actor,
            importer.batch_households,
            importer.run_id,
            importer.today,
        )
