"""Why a message could not be applied, in words that carry none of its values.

A dead letter's reason is stored in the projection's table, published as a header on the
dead-letter topic and logged. The message itself holds personal data (names, addresses,
phones), and so do most exception texts about it: PostgreSQL quotes the failing row in a
constraint violation's detail and the offending value in a data exception's message, a
decoder names the bytes it choked on, a ``KeyError`` shows the key it looked up. So the reason
is built only from what names no value: the exception's class, PostgreSQL's SQLSTATE and the
names of the constraint, table, column or type from its diagnostic (never its message or its
detail), and a fixed description per kind of failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

import schemas

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Failure:
    error_class: str
    reason: str


def describe(exc: BaseException) -> Failure:
    """The class and a reason naming no value of the message that failed."""
    error_class = type(exc).__name__
    if isinstance(exc, psycopg.Error):
        return Failure(error_class, _database_reason(exc))
    if isinstance(exc, schemas.UnknownSchema):
        fingerprint = getattr(exc, "fingerprint_hex", "")
        known = isinstance(fingerprint, str) and _FINGERPRINT.fullmatch(fingerprint)
        return Failure(
            error_class,
            "the message's schema fingerprint is not in the catalogue"
            + (f" ({fingerprint})" if known else ""),
        )
    if isinstance(exc, schemas.NotSingleObjectEncoded):
        return Failure(error_class, "the message is not Avro single-object encoded")
    if isinstance(exc, schemas.CorruptMessage):
        cause = exc.__cause__
        return Failure(
            error_class,
            "the message's body does not decode with its schema"
            + (f" ({type(cause).__name__})" if cause is not None else ""),
        )
    if isinstance(exc, schemas.SchemaError):
        return Failure(error_class, "the message's schema cannot be read as a record")
    if isinstance(exc, KeyError):
        return Failure(error_class, "the handler looked up a key that is missing")
    return Failure(
        error_class, "the handler raised it; its text is not recorded (it may quote the event)"
    )


def _database_reason(exc: psycopg.Error) -> str:
    diag = exc.diag
    sqlstate = exc.sqlstate or diag.sqlstate
    if not sqlstate:
        return "the database driver refused the statement before sending it"
    parts = [f"SQLSTATE {sqlstate}"]
    for label, name in (
        ("constraint", diag.constraint_name),
        ("schema", diag.schema_name),
        ("table", diag.table_name),
        ("column", diag.column_name),
        ("type", diag.datatype_name),
    ):
        if name:
            parts.append(f"{label} {name}")
    return "; ".join(parts)
