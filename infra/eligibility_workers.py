"""Determinations of many households on several processes (a settlement, a reassessment of the
whole registry): the rule engine, the decoding of every household's events and the building of
its aggregates are Python work that one process does on one core.

Each worker is a process of its own with its own :class:`~infra.bootstrap.Container` (its own
connection pool), started once for the whole run; the households are cut into chunks of
``CHUNK`` and each chunk is decided by one worker with ``Eligibility.determine_many``, exactly as
one process would: its facts read from the write model, its decisions saved a batch per
transaction, a household that fails reported and the rest going on. Chunks are disjoint, so no
two workers decide the same household; the event store's table lock still orders every commit
(the chain and the notification order are untouched). Every decision records the caller's
actor, correlation and cause: the command context is passed to each worker.

Workers are spawned, not forked: the parent holds a connection pool and its threads, which a
fork would copy in an undefined state.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.eligibility import BatchSummary
from domain.base import CommandContext, acting_as, current_context

if TYPE_CHECKING:
    from infra.bootstrap import Container
    from infra.config import Settings

CHUNK = 1_000  # households a worker decides at a time (its batches of BATCH_SIZE inside)

_container: list[Container] = []  # the worker process's own container


def _start(settings: Settings) -> None:
    """A worker's start: logging as the settings say (a spawned process starts with none, and
    structlog's default writes to standard output), then its container."""
    from infra.bootstrap import Container
    from infra.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    _container.append(Container(settings))


def _determine(chunk: list[UUID], context: CommandContext, options: dict[str, Any]) -> BatchSummary:
    with acting_as(context):
        return _container[0].services.eligibility.determine_many(chunk, **options)


def merge(into: BatchSummary, summary: BatchSummary) -> None:
    into.decided += summary.decided
    into.unchanged += summary.unchanged
    into.failed += summary.failed
    for result, count in summary.results.items():
        into.results[result] = into.results.get(result, 0) + count


def determine_in_workers(
    settings: Settings,
    household_ids: Iterable[UUID],
    workers: int,
    *,
    rule_set_code: str | None = None,
    reason: str = "batch",
    reassess: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """``Eligibility.determine_many`` on ``workers`` processes, as the current caller."""
    ids = list(household_ids)
    chunks = [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]
    options = {"rule_set_code": rule_set_code, "reason": reason, "reassess": reassess}
    summary = BatchSummary()
    if not chunks:
        return summary
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(chunks))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(settings,),
    ) as pool:
        for chunk, done in zip(
            chunks,
            pool.map(_determine, chunks, repeat(current_context()), repeat(options)),
            strict=True,
        ):
            merge(summary, done)
            if progress:
                progress(len(chunk))
    return summary
