"""The links carried in Kafka are compared with the walk over the log in windows, partition by
partition, with the same findings as one stream merged in notification order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from application.reports import AuditReport
from infra.tamper_evidence import _Carried


def merged_reference(
    walk: list[int], partitions: list[list[tuple[int, bytes]]]
) -> tuple[dict[int, list[bytes]], set[tuple[int, str]], int]:
    """The comparison as it was: every link merged into one stream, taken position by position."""
    stream = heapq.merge(*partitions, key=lambda pair: pair[0])
    pending = next(stream, None)
    last, count, problems = 0, 0, []
    seen: dict[int, list[bytes]] = {}

    def up_to(position: int | None) -> list[bytes]:
        nonlocal pending, last, count
        here = []
        while pending is not None and (position is None or pending[0] <= position):
            notification_id, link = pending
            count += 1
            if notification_id == position:
                here.append(link)
            elif notification_id != last:
                problems.append((notification_id, "missing"))
            last = max(last, notification_id)
            pending = next(stream, None)
        return here

    for position in walk:
        seen[position] = up_to(position)
    up_to(None)
    first = {(p, k) for p, k in problems[:1]}
    return seen, first, count


def windowed(
    walk: list[int], partitions: list[list[tuple[int, bytes]]], batch: int
) -> tuple[dict[int, list[bytes]], set[tuple[int, str]], int]:
    def batches(links: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
        for start in range(0, len(links), batch):
            yield links[start : start + batch]

    report = AuditReport("t", "t", "t")
    carried = _Carried([batches(p) for p in partitions], report)
    carried.WINDOW = 7  # many windows over a small log
    seen = {position: carried.up_to(position) for position in walk}
    carried.up_to(None)
    problems = {
        (f["position"], "missing")
        for f in report.findings
        if f["problem"] == "published to Kafka but missing from the event store"
    }
    assert not [f for f in report.findings if "out of" in f["problem"]]
    return seen, problems, carried.count


@settings(max_examples=300, deadline=None)
@given(
    positions=st.lists(st.integers(1, 120), unique=True, max_size=60).map(sorted),
    extra=st.lists(st.integers(1, 130), unique=True, max_size=5),
    spread=st.lists(st.integers(0, 3), min_size=200, max_size=200),
    duplicates=st.lists(st.integers(1, 120), max_size=3),
    batch=st.integers(1, 9),
)
def test_windowed_comparison_finds_what_the_merged_stream_finds(
    positions: list[int],
    extra: list[int],
    spread: list[int],
    duplicates: list[int],
    batch: int,
) -> None:
    carried_ids = sorted({*positions, *extra, *duplicates}) + sorted(duplicates)
    partitions: list[list[tuple[int, bytes]]] = [[], [], [], []]
    for i, notification_id in enumerate(carried_ids):
        partitions[spread[i % len(spread)]].append((notification_id, bytes([notification_id])))
    for partition in partitions:
        partition.sort()
    assert windowed(positions, partitions, batch) == merged_reference(positions, partitions)


def test_a_partition_out_of_notification_order_is_reported() -> None:
    report = AuditReport("t", "t", "t")
    carried = _Carried([iter([[(1, b"a"), (3, b"c"), (2, b"b")]])], report)
    assert carried.up_to(1) == [b"a"]
    carried.up_to(2)
    carried.up_to(3)
    carried.up_to(None)
    assert {"position": 2, "problem": "Kafka holds this link out of notification order"} in [
        {k: f[k] for k in ("position", "problem")} for f in report.findings
    ]
