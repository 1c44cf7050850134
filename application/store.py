"""The event store on the eventsourcing library.

:class:`ReintegrationApplication` is the library's Application with the project's
transcodings (how dates and the domain's value objects are written in the stored JSON). It runs
on PostgreSQL in production (the recorder of ``infra/chain.py``) and in memory in the fast tests
(the library's POPO persistence). :class:`LibraryEventStore` implements the
:class:`~application.ports.EventStore` port with the library's own calls; the PostgreSQL
adapter (``infra/event_store.py``) answers the bulk reads with SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    ProjectorFunction,
    Repository,
)
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    JSONTranscoder,
    Recording,
    Transcoding,
)
from eventsourcing.utils import get_topic, resolve_topic

from application.ports import CaseEvent, ConcurrentUpdate
from domain import base, engine, housing, surveys
from domain.base import NotFound
from domain.registry import Household, Member, Person
from domain.relocation import Relocation

HOUSEHOLD_REGISTERED = get_topic(Household.Registered)

SNAPSHOT_INTERVAL = 50
"""Events between two snapshots of a long-lived aggregate: loading one reads its latest
snapshot and fewer than this many events after it."""

SNAPSHOT_RECORDER_TOPIC = "SNAPSHOT_RECORDER_TOPIC"
"""The recorder class of the snapshots table (as the library's APPLICATION_RECORDER_TOPIC):
infra/snapshots.py's, which trusts a snapshot only at a version the log holds."""

log = structlog.get_logger(__name__)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MemberAsDict(Transcoding):
    type = Member
    name = "household_member"

    def encode(self, obj: Member) -> dict[str, Any]:
        return {"person_id": obj.person_id, "fin": obj.fin, "relationship": obj.relationship}

    def decode(self, data: dict[str, Any]) -> Member:
        return Member(**data)


class DataclassAsDict(Transcoding):
    """A frozen dataclass of the domain, stored as a dict of its fields."""

    def __init__(self, cls: type, name: str) -> None:
        self.type = cls
        self.name = name

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f: getattr(obj, f) for f in obj.__dataclass_fields__}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class HousingUnitAsList(Transcoding):
    """A settlement's unit in its snapshot, as a list (thousands in one snapshot: one object
    to decode each, not three)."""

    type = housing.HousingUnit
    name = "housing_unit"

    def encode(self, obj: housing.HousingUnit) -> list[Any]:
        return [obj.unit_id.hex, obj.reference, obj.address, obj.rooms, obj.kind, obj.floor]

    def decode(self, data: list[Any]) -> housing.HousingUnit:
        unit_id, reference, address, rooms, kind, floor = data
        return housing.HousingUnit(UUID(unit_id), reference, address, rooms, kind, floor)


class MappingAsLists(Transcoding):
    """A dict with keys that are not strings, in a snapshot: its keys and its values as two
    lists, ids as plain hex (a settlement's thousands of units by id)."""

    type = base.StoredMapping
    name = "snapshot_mapping"

    def encode(self, obj: base.StoredMapping) -> dict[str, Any]:
        keys = [k for k, _ in obj.items]
        values = [v for _, v in obj.items]
        if all(type(k) is UUID for k in keys):
            return {"ids": [k.hex for k in keys], "values": values}
        return {"keys": keys, "values": values}

    def decode(self, data: dict[str, Any]) -> base.StoredMapping:
        keys = [UUID(k) for k in data["ids"]] if "ids" in data else data["keys"]
        return base.StoredMapping([[k, v] for k, v in zip(keys, data["values"], strict=True)])


class AggregatesFirst(ProcessingEvent[UUID]):
    """The library's collection of a save's pending events, asking first whether each object is
    one of the library's aggregates (a plain class check, 0.1 µs) before the library's
    ``runtime_checkable`` protocol checks (about 9 µs an aggregate: every attribute of the
    protocols looked up), which were about a tenth of the legacy import's CPU. Anything else
    (a bare event) goes the library's way."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        others = []
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                others.append(obj)
        super().collect_events(*others, **kwargs)


class SnapshotTolerantRepository(Repository[UUID]):
    """The library's repository, which replays every event when the latest snapshot cannot
    be used (a row that does not decode, a shape no upcaster knows). A snapshot is a cache, so
    a bad row must not stop the aggregate's commands. It is logged here, and ``audit verify``
    names it. An error that the full replay meets too is raised."""

    def _reconstruct_aggregate(
        self,
        aggregate_id: UUID,
        version: int | None,
        projector_func: ProjectorFunction[Any, Any],
    ) -> Any:
        try:
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        except AggregateNotFoundError:
            raise
        except Exception as exc:
            if self.snapshot_store is None:
                raise
            log.warning("snapshot not used", error=type(exc).__name__)
        aggregate = projector_func(None, self.event_store.get(aggregate_id, lte=version))
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate


class ReintegrationApplication(Application[UUID]):
    """The library's Application: repository, mapper and recorder of the project's events."""

    name = "reintegration"  # events table: reintegration_events; snapshots: _snapshots

    # The aggregates that live long and grow: a settlement gains an event per housing unit
    # (thousands), a household and its persons events over the years of a case, a relocation
    # one per step of the move. See docs/adr/0017.
    snapshotting_intervals = {
        housing.Settlement: SNAPSHOT_INTERVAL,
        Household: SNAPSHOT_INTERVAL,
        Person: SNAPSHOT_INTERVAL,
        Relocation: SNAPSHOT_INTERVAL,
    }

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save (collect, record, snapshot, notify), collecting with
        :class:`AggregatesFirst`."""
        processing_event = AggregatesFirst()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def construct_repository(self) -> Repository[UUID]:
        library = super().construct_repository()  # configured from the environment
        repository = SnapshotTolerantRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            fastforward=library.fastforward,
            fastforward_skipping=library.fastforward_skipping,
            deepcopy_from_cache=library.deepcopy_from_cache,
        )
        repository.cache = library.cache
        return repository

    def construct_snapshot_store(self) -> EventStore[UUID]:
        topic = self.env.get(SNAPSHOT_RECORDER_TOPIC)
        if not topic:
            return super().construct_snapshot_store()
        factory: Any = self.factory
        recorder = resolve_topic(topic)(
            datastore=factory.datastore,
            events_table_name=f"{self.name}_snapshots",
            log_table_name=f"{self.name}_events",
        )
        if factory.env_create_table():
            recorder.create_table()
        return EventStore(mapper=self.mapper, recorder=recorder)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """After a save, one snapshot of each aggregate whose new events crossed a multiple of
        its interval, at the version just saved (the library takes one at each multiple). The
        command is recorded already: a snapshot that cannot be written is left to the next
        crossing, and the error is logged, not raised to a caller whose command succeeded."""
        if self.snapshots is None:
            return
        first: dict[UUID, int] = {}
        for event in processing_event.events:
            first.setdefault(event.originator_id, event.originator_version)
        for aggregate_id, aggregate in processing_event.aggregates.items():
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None or aggregate_id not in first:
                continue
            if (first[aggregate_id] - 1) // interval == aggregate.version // interval:
                continue  # no multiple of the interval among the versions just saved
            try:
                self.take_snapshot(aggregate_id, version=aggregate.version)
            except IntegrityError:
                pass  # another process took this very snapshot
            except Exception as exc:  # the command is recorded: see above
                log.warning(
                    "snapshot not taken",
                    aggregate_type=type(aggregate).__name__,
                    version=aggregate.version,
                    error=type(exc).__name__,
                )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(MemberAsDict())
        transcoder.register(DataclassAsDict(surveys.Question, "survey_question"))
        transcoder.register(DataclassAsDict(surveys.Option, "survey_option"))
        transcoder.register(DataclassAsDict(surveys.ShowIf, "survey_show_if"))
        transcoder.register(DataclassAsDict(engine.CriterionOutcome, "criterion_outcome"))
        transcoder.register(DataclassAsDict(housing.Entrant, "lottery_entrant"))
        transcoder.register(DataclassAsDict(housing.RoundUnit, "lottery_unit"))
        transcoder.register(DataclassAsDict(housing.Assignment, "lottery_assignment"))
        transcoder.register(DataclassAsDict(housing.ReservePlace, "lottery_reserve_place"))
        transcoder.register(DataclassAsDict(housing.Commitment, "lottery_commitment"))
        transcoder.register(DataclassAsDict(housing.Contribution, "lottery_contribution"))
        transcoder.register(DataclassAsDict(housing.PublicRandomness, "lottery_public_randomness"))
        transcoder.register(HousingUnitAsList())
        transcoder.register(DataclassAsDict(base.StoredTuple, "snapshot_tuple"))
        transcoder.register(MappingAsLists())


def in_memory() -> ReintegrationApplication:
    """The application on the library's in-memory persistence (the fast tests, a demo)."""
    return ReintegrationApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


class LibraryEventStore:
    """The event store port on the library's Application: correct on any persistence, and fast
    enough in memory. Reads that span many aggregates walk the log."""

    def __init__(self, app: ReintegrationApplication) -> None:
        self.app = app

    def save(self, *aggregates: Any) -> None:
        try:
            self.app.save(*aggregates)
        except IntegrityError:
            raise ConcurrentUpdate from None

    def get(self, aggregate_id: UUID, kind: str) -> Any:
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(kind, aggregate_id) from None

    def find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.app.recorder.select_events(aggregate_id, limit=1))

    def existing(self, ids: Iterable[UUID]) -> set[UUID]:
        return {aggregate_id for aggregate_id in ids if self.exists(aggregate_id)}

    def load_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        found = {}
        for aggregate_id in ids:
            aggregate = self.find(aggregate_id)
            if aggregate is not None:
                found[aggregate_id] = aggregate
        return found

    def count_numbered(
        self, id_for: Callable[[Any, int], UUID], keys: Sequence[Hashable], window: int = 4
    ) -> dict[Any, int]:
        counts = {}
        for key in keys:
            n = 0
            while self.exists(id_for(key, n + 1)):
                n += 1
            counts[key] = n
        return counts

    def first_events(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        found = {}
        for aggregate_id in ids:
            stored = self.app.recorder.select_events(aggregate_id, limit=1)
            if stored:
                found[aggregate_id] = self.app.mapper.to_domain_event(stored[0])
        return found

    def households_originating_from(self, settlement_code: str) -> list[UUID]:
        return [
            event.originator_id
            for event in self._registrations()
            if event.origin_settlement_code == settlement_code
        ]

    def households(self) -> list[UUID]:
        return [event.originator_id for event in self._registrations()]

    def _registrations(self) -> list[Any]:
        recorder = self.app.recorder
        return [
            self.app.mapper.to_domain_event(n)
            for n in recorder.select_notifications(
                start=1, limit=10**9, topics=[HOUSEHOLD_REGISTERED]
            )
        ]

    def case_events(self, ids: Iterable[UUID]) -> list[CaseEvent]:
        wanted = set(ids)
        return [
            CaseEvent(n.id, self.app.mapper.to_domain_event(n), None)
            for n in self.app.recorder.select_notifications(start=1, limit=10**9)
            if n.originator_id in wanted
        ]

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def analyze(self) -> None:
        pass
