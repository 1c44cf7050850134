"""The pure parts of idempotent commands: reading the Idempotency-Key header and the
fingerprint of the request a key stands for."""

from __future__ import annotations

import pytest

from api.http.idempotency import MAX_KEY_LENGTH, MalformedKey, fingerprint, parse_key
from infra.idempotency import CommandRecording


def test_a_bare_key_is_taken_as_it_is() -> None:
    assert parse_key("8e03978e-40d5-43e8-bc93-6894a57f9324") == (
        "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )


def test_a_quoted_key_is_read_as_a_structured_field_string() -> None:
    assert parse_key('"8e03978e-40d5"') == "8e03978e-40d5"
    assert parse_key(r'"a \"quoted\" \\ key"') == 'a "quoted" \\ key'


@pytest.mark.parametrize(
    "value",
    ["", "   ", '""', '" "', "k" * (MAX_KEY_LENGTH + 1), "tab\there", "ключ", '"a"b"', '"a\\b"'],
)
def test_an_empty_overlong_or_unprintable_key_is_malformed(value: str) -> None:
    with pytest.raises(MalformedKey):
        parse_key(value)


def test_a_key_of_the_longest_length_is_accepted() -> None:
    assert parse_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH


def test_the_same_request_has_the_same_fingerprint() -> None:
    one = fingerprint("POST", "/api/v1/households", b"", b'{"a": 1}')
    assert one == fingerprint("POST", "/api/v1/households", b"", b'{"a": 1}')
    assert len(one) == 32


def test_any_difference_in_method_path_query_or_body_changes_the_fingerprint() -> None:
    base = ("POST", "/api/v1/households", b"", b'{"a": 1}')
    variants = [
        ("PUT", *base[1:]),
        ("POST", "/api/v1/households/x", b"", b'{"a": 1}'),
        ("POST", "/api/v1/households", b"reason=x", b'{"a": 1}'),
        ("POST", "/api/v1/households", b"", b'{"a":1}'),
        # Moving bytes between parts is another request too (each part is length-prefixed).
        ("POST", "/api/v1/households", b'{"a": 1}', b""),
    ]
    assert len({fingerprint(*base), *(fingerprint(*v) for v in variants)}) == 1 + len(variants)


def test_a_commands_recording_keeps_its_first_and_last_positions() -> None:
    recorded = CommandRecording()
    recorded.note(None)
    assert recorded.last is None
    recorded.note([7, 8, 9])
    recorded.note([12])
    assert (recorded.first, recorded.last) == (7, 12)
