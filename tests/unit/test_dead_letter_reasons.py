"""A dead letter's reason names what failed, never a value of the message that failed."""

from __future__ import annotations

import psycopg

import schemas
from projections.failures import describe

SECRET = "Bakı, Nizami küçəsi 5, +994501234567"


def test_an_error_of_a_handler_is_recorded_by_its_class_without_its_text() -> None:
    for exc in (ValueError(SECRET), KeyError(SECRET), TypeError(SECRET), RuntimeError(SECRET)):
        failure = describe(exc)
        assert failure.error_class == type(exc).__name__
        assert SECRET not in failure.reason and "Nizami" not in failure.reason


def test_a_body_that_does_not_decode_names_the_decoders_error_class_only() -> None:
    try:
        try:
            raise UnicodeDecodeError("utf-8", SECRET.encode(), 0, 1, SECRET)
        except UnicodeDecodeError as inner:
            raise schemas.CorruptMessage(f"body does not decode: {inner}") from inner
    except schemas.CorruptMessage as exc:
        failure = describe(exc)
    assert failure.error_class == "CorruptMessage"
    assert "UnicodeDecodeError" in failure.reason and "Nizami" not in failure.reason


def test_an_unknown_schema_names_its_fingerprint() -> None:
    failure = describe(schemas.UnknownSchema("00112233aabbccdd"))
    assert failure.reason.endswith("(00112233aabbccdd)")


def test_a_database_error_without_a_server_answer_names_no_value() -> None:
    failure = describe(psycopg.DataError(f"cannot dump {SECRET}"))
    assert failure.error_class == "DataError" and "Nizami" not in failure.reason
