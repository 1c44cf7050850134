"""Loading the existing registry: the use case, from rows grouped by household to households
registered, skipped or rejected, every figure counted from what the store holds.

Every row ends in exactly one of three states:

- **registered**: its household was recorded (the household and all its members, in one
  transaction: a household is all or nothing);
- **skipped**: its household was already registered with the same details (a second run, or a
  run after one that was killed, registers nobody twice);
- **rejected**: handed to the report with its line, household, FIN and reason.

Households are validated by the same rules as the API (:mod:`application.legacy_rows`) and
saved a batch to a transaction. A household that conflicts with another (a FIN registered
meanwhile) is rejected alone; the others of its batch are saved again from scratch. Reading the file (its encoding, its CSV, grouping its rows in
bounded memory) and writing the report are the adapter's (``infra/legacy_csv.py``).

Batches may be registered by several workers at once (:class:`Workers`, processes in
``infra/legacy_workers.py``): each worker validates, builds and saves its batches with its own
connection, and the event store's table lock orders the commits. The workers take only the
households that share no FIN with another household of the file; the households that do are
registered afterwards, here, in the order of the file, so that a shared FIN still goes to the
first household that claims it. A batch's figures count only once its worker has counted them
from the store; a worker that dies stops the import, and what it was doing is not counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, cast

from application.legacy_rows import Row, build
from application.ports import ConcurrentUpdate, EventStore
from domain import text
from domain.base import Actor, CommandContext, DomainError, FieldError, ValidationFailed, acting_as
from domain.registry import MAX_MEMBERS, Household, Person

MAX_REF_CHARS = 100

# Exit codes of `reintegration import registry`, documented in the README.
EXIT_OK = 0
EXIT_ROWS_REJECTED = 3
EXIT_FILE_REFUSED = 4


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


class Households(Protocol):
    """The file's rows grouped by household (the adapter's spool)."""

    def household_count(self) -> int: ...

    def households(self) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Each household's ref, its number of rows, and its rows (streamed)."""


class Report(Protocol):
    """Where rejected rows go (the adapter writes them out in line order)."""

    def reject(self, rejections: list[Rejection]) -> None: ...


class SharedFins(Households, Protocol):
    """A spool that can tell apart the households sharing a FIN with another of the file."""

    def households_apart(self, contested: bool) -> Iterator[tuple[str, int, Iterator[Row]]]:
        """Like ``households()``, only those that share a FIN with another household of the
        file (``contested``), or only those that do not."""


Batch = list[tuple[str, list[Row]]]


@dataclass
class BatchOutcome:
    """What a worker did with a batch: figures counted from the store after its commits, the
    rows it rejected, and, when it stopped on an error, the error's one-line description
    (what it committed before the error is still counted)."""

    households_registered: int = 0
    persons_registered: int = 0
    households_already_registered: int = 0
    rows_skipped: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    failure: str | None = None


class Workers(Protocol):
    """Registers batches elsewhere (worker processes), each with
    :meth:`HouseholdImport.register_batch`, and yields each batch with its outcome as it
    completes. It stops taking batches when the generator is closed; it raises
    :class:`WorkerFailed` when a worker dies (the batches it held are not counted)."""

    def run(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, BatchOutcome]]: ...


class WorkerFailed(Exception):
    """The import stopped because a worker failed (the message says how, in one line: no
    personal data)."""


class _Collected:
    """A report that keeps the rejections (a worker sends them back with its outcome)."""

    def __init__(self) -> None:
        self.rejections: list[Rejection] = []

    def reject(self, rejections: list[Rejection]) -> None:
        self.rejections.extend(rejections)


# --- the import ---------------------------------------------------------------------------


# One transaction holds at most this many events: it holds the event store's table lock, so
# commands of a running service wait for it (about 50 ms). Larger gains little (measured: 300
# events 3,587 persons/s, 1,000 events 3,878, 3,000 events 3,813): the import is bound by the
# domain work in Python, not by the inserts.
MAX_EVENTS_PER_TRANSACTION = 1000


class HouseholdImport:
    """The households of a file, registered, skipped or rejected, a batch to a transaction."""

    def __init__(
        self,
        store: EventStore,
        actor: Actor,
        batch_households: int = 200,
        run_id: str | None = None,
        today: date | None = None,
    ) -> None:
        self.store = store
        self.actor = actor
        self.batch_households = batch_households
        self.run_id = run_id or str(uuid.uuid4())
        self.today = today or date.today()

    def register(
        self,
        source: Households,
        report: Report,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None = None,
        workers: Workers | None = None,
    ) -> ImportResult:
        """Take every household of ``source``; ``result`` (counted from the store as commits
        land) says how far it got, even when the import stops on an error. With ``workers``
        (and a source that tells the households sharing a FIN apart), the households that
        share no FIN are registered by the workers, the others then here."""
        if workers is not None and hasattr(source, "households_apart"):
            self._register_in_parallel(
                cast(SharedFins, source), report, result, on_progress, workers
            )
        else:
            self._register(source, report, result, on_progress)
        self.store.analyze()
        return result

    def register_batch(self, batch: Batch) -> BatchOutcome:
        """A worker's part: one batch registered, skipped or rejected, counted from the store.
        An error stops the batch; what was committed before it is counted all the same."""
        collected = _Collected()
        result = ImportResult()
        failure = None
        try:
            self._import_batch(batch, collected, result)
        except Exception as exc:  # the parent stops the import and says so
            failure = f"{type(exc).__name__} in a worker"
        return BatchOutcome(
            result.households_registered,
            result.persons_registered,
            result.households_already_registered,
            result.rows_skipped,
            collected.rejections,
            failure,
        )

    def _register_in_parallel(
        self,
        source: SharedFins,
        spool: Report,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None,
        workers: Workers,
    ) -> None:
        total = source.household_count()
        done = 0
        failure: str | None = None

        def batches() -> Iterator[Batch]:
            nonlocal done
            batch: Batch = []
            for ref, count, household_rows in source.households_apart(contested=False):
                if failure is not None:
                    return
                held = self._admissible(ref, count, household_rows, spool, result)
                if held is None:
                    done += 1
                    continue
                batch.append((ref, held))
                if len(batch) >= self.batch_households:
                    yield batch
                    batch = []
            if batch and failure is None:
                yield batch

        for batch, outcome in workers.run(batches()):
            result.households_registered += outcome.households_registered
            result.persons_registered += outcome.persons_registered
            result.households_already_registered += outcome.households_already_registered
            result.rows_skipped += outcome.rows_skipped
            self._record(spool, result, outcome.rejections)
            done += len(batch)
            if outcome.failure is not None and failure is None:
                failure = outcome.failure  # no more batches; those under way are counted
            if on_progress:
                on_progress("registering", done, total)
        if failure is not None:
            raise WorkerFailed(failure)
        self._register_households(
            source.households_apart(contested=True), total, done, spool, result, on_progress
        )

    # --- households -----------------------------------------------------------------------

    def _register(
        self,
        source: Households,
        spool: Report,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> None:
        total = source.household_count()
        self._register_households(source.households(), total, 0, spool, result, on_progress)

    def _register_households(
        self,
        households: Iterator[tuple[str, int, Iterator[Row]]],
        total: int,
        done: int,
        spool: Report,
        result: ImportResult,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> None:
        batch: Batch = []
        for ref, count, household_rows in households:
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
        spool: Report,
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

    def _import_batch(self, batch: Batch, spool: Report, result: ImportResult) -> None:
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
        self, ref: str, household_rows: list[Row], spool: Report, result: ImportResult
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
        self, candidates: list[Prepared], spool: Report, result: ImportResult
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

    def _save(self, chunk: list[Prepared], spool: Report, result: ImportResult) -> None:
        """One transaction for the chunk. If it conflicts (someone registered one of its FINs
        meanwhile), each household is built again from its rows and saved alone, so that the
        conflict takes only its own household down."""
        try:
            self.store.save(*[a for p in chunk for a in p.aggregates])
        except ConcurrentUpdate:
            for prepared in chunk:
                again = self._prepare(prepared.ref, prepared.rows, spool, result)
                if again is None:
                    continue
                try:
                    self.store.save(*again.aggregates)
                except ConcurrentUpdate:
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

    def _count_stored(self, saved: list[Prepared], spool: Report, result: ImportResult) -> None:
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
        return self.store.existing(ids)

    def _registrations(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        """The registration events of those of ``ids`` the store holds."""
        return self.store.first_events(ids)

    # --- rejections -----------------------------------------------------------------------

    def _reject_household(
        self, spool: Report, result: ImportResult, prepared: Prepared, reason: str
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
        spool: Report,
        result: ImportResult,
        ref: str,
        rows_: list[Row],
        reasons: dict[int, str],
    ) -> None:
        rejections = [Rejection(r.line, ref, r.fin, reasons[r.line]) for r in rows_]
        self._record(spool, result, rejections)

    def _reject_each(
        self, spool: Report, result: ImportResult, rows_: Iterator[Row], reason: str
    ) -> None:
        batch: list[Rejection] = []
        for row in rows_:
            batch.append(Rejection(row.line, row.ref, row.fin, row.problem or reason))
            if len(batch) >= 1000:
                self._record(spool, result, batch)
                batch = []
        self._record(spool, result, batch)

    @staticmethod
    def _record(spool: Report, result: ImportResult, rejections: list[Rejection]) -> None:
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
