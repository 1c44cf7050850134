"""The links the event messages carry in Kafka (their ``chain-hash`` and ``notification-id``
headers), read for the chain verification (:meth:`infra.audit_trail.AuditTrail.verify`): in
notification order, in the verifying process on a short log, by a process of their own on a
long one, so that reading Kafka runs beside the walk over the log and its hashing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.kafka import kafka_partitions, read_partitions


def carried_links(
    bootstrap: str, topics: list[str], unreadable: list[str]
) -> Iterator[tuple[int, bytes]]:
    """The links the event messages carry, in notification order: one reader per partition
    (each partition is in notification order), merged. A message with a link whose position
    or link cannot be read (not decimal digits, not hexadecimal) is left out and named in
    ``unreadable`` (topic, partition, offset): junk anyone put in the topic is a finding of
    the verification, never its end."""
    from infra.tamper_evidence import in_notification_order

    def carried(messages: Iterator[Any]) -> Iterator[tuple[int, bytes]]:
        for message in messages:  # the two headers read where they are: one message in
            position = link = None  # ten million is not worth a dict of all its headers
            for key, value in message.headers() or ():
                if key == "chain-hash":
                    link = value or b""  # an empty link is one that differs, not none
                elif key == "notification-id":
                    position = value
            if link is None:
                continue
            try:
                if not (position and position.isdigit() and position.isascii()):
                    raise ValueError
                yield int(position), bytes.fromhex(link.decode("ascii"))
            except ValueError:  # UnicodeDecodeError too
                unreadable.append(f"{message.topic()}[{message.partition()}]@{message.offset()}")

    readers = read_partitions(bootstrap, kafka_partitions(bootstrap, topics))
    return in_notification_order([carried(r) for r in readers])


LINKS_IN_A_PROCESS_FROM = 200_000  # events
LINKS_PER_BATCH = 5_000  # sent from the reading process at a time


def links_read_in_another_process(
    bootstrap: str,
    topics: list[str],
    unreadable: list[str],
    log_format: str = "json",
    log_level: str = "info",
) -> Iterator[tuple[int, bytes]]:
    """:func:`carried_links` read by a process of its own and handed over in batches, so
    that reading Kafka (its client, each message's headers, the merge) runs beside the walk
    over the log and its hashing instead of taking turns with them on one core: the same
    pairs in the same order. At most about two batches are on their way at a time (the one in
    the pipe, the one being sent): memory stays flat however long the log. An error of the
    reader is raised here (Kafka's own as :class:`KafkaUnavailable`); a reader that dies is
    too. Closed early, the reader is stopped.

    The process is spawned, not forked: the caller holds a connection pool and its threads."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    reader = context.Process(
        target=_send_links,
        args=(sender, bootstrap, topics, log_format, log_level),
        name="kafka-links",
        daemon=True,
    )
    reader.start()
    sender.close()  # the reader's end only: a reader that dies ends the pipe
    try:
        while True:
            try:
                batch = receiver.recv()
            except EOFError:
                reader.join(5)
                raise RuntimeError(
                    f"the process reading Kafka's links ended early (exit code {reader.exitcode})"
                ) from None
            if isinstance(batch, tuple):  # the end, and the messages it could not read
                unreadable.extend(batch[1])
                return
            if isinstance(batch, BaseException):
                raise batch
            yield from batch
    finally:
        receiver.close()
        reader.join(5)  # it ends by itself once it has sent the end, or met the closed pipe
        if reader.is_alive():
            reader.terminate()
            reader.join()


def _send_links(
    sender: Any, bootstrap: str, topics: list[str], log_format: str, log_level: str
) -> None:
    """The reading process: batches of links, then the end ("end", the messages it could not
    read), or the error it met. Ctrl-C
    is the verifying process's to handle (the command's own stop), not this one's."""
    import contextlib
    import pickle
    import signal

    from infra.logging import configure_logging
    from infra.resilience import KafkaUnavailable

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(log_format, log_level)
    try:
        batch: list[tuple[int, bytes]] = []
        unreadable: list[str] = []
        for pair in carried_links(bootstrap, topics, unreadable):
            batch.append(pair)
            if len(batch) == LINKS_PER_BATCH:
                sender.send(batch)
                batch = []
        sender.send(batch)
        sender.send(("end", unreadable))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the verification stopped reading (it ended early): nothing to tell it
    except Exception as exc:
        from confluent_kafka import KafkaException

        error: BaseException = exc
        if isinstance(exc, KafkaException):  # its class does not pickle
            error = KafkaUnavailable(str(exc))
        try:
            pickle.loads(pickle.dumps(error))  # one the verifying process can rebuild
        except Exception:
            error = RuntimeError(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):  # the verification stopped reading meanwhile
            sender.send(error)
    finally:
        sender.close()
