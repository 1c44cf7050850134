"""The legacy import's workers: processes that register batches of households in parallel.

The domain work of the import (reading each row by the text rules, building and checking the
aggregates, encoding the events) is Python, bound to one core per process; the event store's
table lock orders the commits anyway. So each worker process holds its own connection pool and
registers whole batches with :meth:`HouseholdImport.register_batch` (validate, build, skip what
is registered, save a chunk to a transaction, count what the store holds), while the parent
reads the spool, hands out batches and writes the report.

- A worker is started with ``spawn`` (no connection, lock or thread of the parent is copied)
  and dies with its parent (``PR_SET_PDEATHSIG``): a killed import leaves no worker
  committing behind it.
- At most two batches per worker are handed out at once (memory stays flat with the file).
- A batch is counted only from the outcome its worker sends back after its commits; a worker
  that dies (killed, out of memory) breaks the pool, the import stops with
  :class:`~application.legacy_import.WorkerFailed`, and the batches it held are not counted
  (run the import again: what they committed is skipped).
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

from application.legacy_import import Batch, BatchOutcome, HouseholdImport, WorkerFailed
from application.ports import EventStore
from domain.base import Actor

PR_SET_PDEATHSIG = 1
BATCHES_PER_WORKER = 2


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker needs to register batches as the parent would (picklable)."""

    open_store: Callable[[], EventStore]
    actor: Actor
    batch_households: int
    run_id: str
    today: date


_importer: HouseholdImport | None = None


def _start(plan: WorkerPlan, parent: int) -> None:
    """In the worker: die with the parent, then open the store."""
    global _importer
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own checks remain
        pass
    if os.getppid() != parent:  # the parent died before the signal was set up
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _importer = HouseholdImport(
        plan.open_store(), plan.actor, plan.batch_households, plan.run_id, plan.today
    )


def _register(batch: Batch) -> BatchOutcome:
    assert _importer is not None, "the worker was not started"
    return _importer.register_batch(batch)


def open_container_store(settings: Any) -> EventStore:
    """A worker's event store: the composition root's, with its own connection pool."""
    from infra.bootstrap import Container

    return Container(settings).store


def _ready() -> None:
    """A task that only makes the pool start a worker (and run its initializer)."""


class ProcessWorkers:
    """:class:`~application.legacy_import.Workers` as processes. :meth:`start` starts them
    ahead (their start, about a second of imports and connecting, then overlaps the reading of
    the file); :meth:`close` stops them, and :meth:`run` closes them when it ends."""

    def __init__(self, count: int, plan: WorkerPlan) -> None:
        self.count = count
        self.plan = plan
        self.pool: futures.ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.pool is None:
            self.pool = futures.ProcessPoolExecutor(
                self.count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.plan, os.getpid()),
            )
            for _ in range(self.count):  # each task without an idle worker starts one
                self.pool.submit(_ready)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def run(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, BatchOutcome]]:
        self.start()
        pool = self.pool
        assert pool is not None
        pending: dict[futures.Future[BatchOutcome], Batch] = {}
        try:
            source = iter(batches)
            exhausted = False
            while True:
                while not exhausted and len(pending) < self.count * BATCHES_PER_WORKER:
                    batch = next(source, None)
                    if batch is None:
                        exhausted = True
                    else:
                        pending[pool.submit(_register, batch)] = batch
                if not pending:
                    return
                done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                broken = False
                for future in done:
                    batch = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    yield batch, outcome
                if broken:
                    raise WorkerFailed(
                        "a worker process died or could not start; "
                        "the batches it held were not counted"
                    )
        finally:
            for future in pending:
                future.cancel()
            self.close()


def process_workers(
    count: int,
    settings: Any,
    actor: Actor,
    batch_households: int,
    run_id: str,
    today: date,
) -> ProcessWorkers:
    """``count`` worker processes, each on the event store of ``settings``."""
    plan = WorkerPlan(
        partial(open_container_store, settings), actor, batch_households, run_id, today
    )
    return ProcessWorkers(count, plan)
