"""Checkpoints carry RFC 3161 timestamps from an outside authority (here openssl's ``ts``)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psycopg
import pytest
from rfc3161_client import decode_timestamp_response
from structlog.testing import capture_logs

from infra import timestamping
from infra.timestamping import (
    TimestampInvalid,
    TimestampUnavailable,
    request_timestamp,
    verify_timestamp,
)
from tests.support import ROOT
from tests.support_tsa import LocalTSA, make_authority, serving, silent_tsa, unused_url


def checkpoint_note(tree_size: int) -> str:
    """A C2SP signed checkpoint note, as the audit trail signs them."""
    root = base64.b64encode(os.urandom(32)).decode()
    signature = base64.b64encode(os.urandom(68)).decode()
    origin = "reintegration.example/audit"
    return f"{origin}\n{tree_size}\n{root}\n\n\u2014 {origin} {signature}\n"


def certificates(tsa: LocalTSA) -> list[bytes]:
    return [tsa.ca_pem.read_bytes()]


def test_a_token_from_the_authority_verifies_and_gives_the_time_it_was_made(
    local_tsa: LocalTSA,
) -> None:
    note = checkpoint_note(12).encode()
    token = request_timestamp(note, local_tsa.url, timeout_s=10)
    gen_time = verify_timestamp(note, token, certificates(local_tsa))
    assert gen_time.tzinfo is not None and gen_time.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - gen_time) < timedelta(minutes=2)


def test_a_token_does_not_verify_for_other_bytes(local_tsa: LocalTSA) -> None:
    note = checkpoint_note(12)
    token = request_timestamp(note.encode(), local_tsa.url, timeout_s=10)
    changed = note.replace("\n12\n", "\n13\n").encode()
    with pytest.raises(TimestampInvalid, match="other data"):
        verify_timestamp(changed, token, certificates(local_tsa))


def test_a_token_does_not_verify_against_another_authoritys_root(
    local_tsa: LocalTSA, tmp_path: Path
) -> None:
    note = checkpoint_note(12).encode()
    token = request_timestamp(note, local_tsa.url, timeout_s=10)
    other = make_authority(tmp_path / "other", name="Other")
    with pytest.raises(TimestampInvalid, match="configured TSA certificates"):
        verify_timestamp(note, token, [other.ca_pem.read_bytes()])


def test_a_token_whose_time_was_changed_does_not_verify(local_tsa: LocalTSA) -> None:
    note = checkpoint_note(12).encode()
    token = request_timestamp(note, local_tsa.url, timeout_s=10)
    gen_time = decode_timestamp_response(token).tst_info.gen_time
    written = gen_time.strftime("%Y%m%d%H%M%SZ").encode()
    assert token.count(written) == 1
    earlier = written.replace(written[:4], str(gen_time.year - 1).encode(), 1)
    with pytest.raises(TimestampInvalid):
        verify_timestamp(note, token.replace(written, earlier), certificates(local_tsa))


def test_no_one_byte_change_makes_a_token_prove_anything_else(local_tsa: LocalTSA) -> None:
    """A changed byte either breaks the token or lies where the signature does not reach and
    nothing is claimed (a version number, a redundant algorithm identifier): time, data and
    serial number stay those the authority signed."""
    note = checkpoint_note(12).encode()
    token = request_timestamp(note, local_tsa.url, timeout_s=10)
    signed = decode_timestamp_response(token).tst_info
    refused = 0
    for position in range(len(token)):
        changed = bytearray(token)
        changed[position] ^= 0x01
        try:
            gen_time = verify_timestamp(note, bytes(changed), certificates(local_tsa))
        except TimestampInvalid:
            refused += 1
            continue
        info = decode_timestamp_response(bytes(changed)).tst_info
        assert gen_time == signed.gen_time
        assert info.message_imprint.message == signed.message_imprint.message
        assert info.serial_number == signed.serial_number
    assert refused > 0.95 * len(token)


def test_an_authority_that_is_down_is_reported_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(TimestampUnavailable, match="could not be reached") as raised:
        request_timestamp(b"note", unused_url(), timeout_s=10)
    assert time.monotonic() - started < 5
    assert "note" not in str(raised.value)


def test_an_authority_that_does_not_answer_is_given_up_after_the_timeout() -> None:
    with silent_tsa() as url:
        started = time.monotonic()
        with pytest.raises(TimestampUnavailable, match=r"timed out \(timeout 0\.5 s\)"):
            request_timestamp(b"note", url, timeout_s=0.5)
        assert time.monotonic() - started < 5


def test_a_refusal_by_the_authority_is_reported_with_its_status(tmp_path: Path) -> None:
    authority = make_authority(tmp_path / "strict")
    config = authority.config.read_text()
    authority.config.write_text(config.replace("digests = sha256,", "digests ="))
    with serving(authority) as strict, pytest.raises(TimestampUnavailable, match="REJECTION"):
        request_timestamp(b"note", strict.url, timeout_s=10)


def test_an_answer_to_another_request_is_refused(local_tsa: LocalTSA) -> None:
    replayed = request_timestamp(b"note", local_tsa.url, timeout_s=10)
    with answering(replayed) as url, pytest.raises(TimestampInvalid, match="nonce"):
        request_timestamp(b"note", url, timeout_s=10)


def test_an_answer_that_is_not_a_timestamp_is_refused() -> None:
    with answering(b"<html>maintenance</html>") as url, pytest.raises(TimestampInvalid):
        request_timestamp(b"note", url, timeout_s=10)


def test_an_auditor_checks_a_token_by_hand_as_the_readme_shows(
    audit_database: str, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    if shutil.which("psql") is None:
        pytest.skip("the README's example needs psql, the PostgreSQL client")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Trusted time for checkpoints") :]
    example = section[section.index("```bash\n") + 8 : section.index("```\n", 10)]
    note = checkpoint_note(85)
    token = request_timestamp(note.encode(), local_tsa.url, timeout_s=10)
    gen_time = verify_timestamp(note.encode(), token, certificates(local_tsa))
    timestamping.store_timestamp(audit_database, 85, note, token, gen_time, local_tsa.url)
    (tmp_path / "checkpoint.note").write_bytes(note.encode())
    (tmp_path / "tsa-root.pem").write_bytes(local_tsa.ca_pem.read_bytes())

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", f"set -o pipefail\n{example}"],
            cwd=tmp_path,
            env={**os.environ, "DATABASE_URL": audit_database},
            capture_output=True,
            text=True,
            check=False,
        )

    done = run()
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout
    assert "Time stamp: " in done.stdout and f"{gen_time:%H:%M:%S %Y} GMT" in done.stdout
    (tmp_path / "checkpoint.note").write_bytes(note.replace("\n85\n", "\n86\n").encode())
    assert "Verification: FAILED" in run().stdout


@pytest.fixture
def audit_database(database_url: str) -> str:
    timestamping.prepare(database_url)
    timestamping.prepare(database_url)  # again, as every process does at start
    return database_url


def test_a_stored_token_reads_back_by_checkpoint_and_verifies(
    audit_database: str, local_tsa: LocalTSA
) -> None:
    note = checkpoint_note(40)
    token = request_timestamp(note.encode(), local_tsa.url, timeout_s=10)
    gen_time = verify_timestamp(note.encode(), token, certificates(local_tsa))
    assert timestamping.store_timestamp(audit_database, 40, note, token, gen_time, local_tsa.url)
    assert not timestamping.store_timestamp(
        audit_database, 40, note, token, gen_time, local_tsa.url
    )
    stored = timestamping.stored_timestamps(audit_database)
    key = (40, hashlib.sha256(note.encode()).digest())
    assert list(stored) == [key]
    assert stored[key].token == token and stored[key].gen_time == gen_time
    assert stored[key].tsa == local_tsa.url
    assert verify_timestamp(note.encode(), stored[key].token, certificates(local_tsa)) == gen_time


def test_the_authority_is_stored_without_its_credentials(audit_database: str) -> None:
    note = checkpoint_note(3)
    url = "https://user:secret@tsa.example:8443/tsr?key=secret"
    with psycopg.connect(audit_database) as conn:
        timestamping.store_timestamp(conn, 3, note, b"t", datetime.now(UTC), url)
    [stored] = timestamping.stored_timestamps(audit_database).values()
    assert stored.tsa == "https://tsa.example:8443/tsr"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.checkpoint_timestamps SET gen_time = gen_time - interval '1 day'",
        "UPDATE audit.checkpoint_timestamps SET token = token || '\\x00'::bytea",
        "DELETE FROM audit.checkpoint_timestamps",
        "TRUNCATE audit.checkpoint_timestamps",
    ],
)
def test_stored_tokens_cannot_be_changed_or_removed(audit_database: str, statement: str) -> None:
    note = checkpoint_note(7)
    timestamping.store_timestamp(audit_database, 7, note, b"t", datetime.now(UTC), "http://t/")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        psycopg.connect(audit_database) as conn,
    ):
        conn.execute(statement)
    assert len(timestamping.stored_timestamps(audit_database)) == 1


def test_pending_checkpoints_are_timestamped_once_and_after_an_outage(
    audit_database: str, local_tsa: LocalTSA
) -> None:
    notes = [checkpoint_note(size) for size in (5, 9)]
    with capture_logs() as logs:
        stored = timestamping.timestamp_pending(
            audit_database, notes, unused_url(), 2, certificates(local_tsa)
        )
    assert stored == 0 and timestamping.stored_timestamps(audit_database) == {}
    assert [entry["tree_size"] for entry in logs] == [5]  # one line, then it waits
    assert "could not be reached" in logs[0]["reason"]

    later = [*notes, checkpoint_note(14)]
    stored = timestamping.timestamp_pending(
        audit_database, later, local_tsa.url, 10, certificates(local_tsa)
    )
    assert stored == 3
    again = timestamping.timestamp_pending(
        audit_database, later, local_tsa.url, 10, certificates(local_tsa)
    )
    assert again == 0
    tokens = timestamping.stored_timestamps(audit_database)
    assert sorted(size for size, _ in tokens) == [5, 9, 14]
    for note in later:
        record = tokens[(timestamping.note_tree_size(note), timestamping.note_sha256(note))]
        assert verify_timestamp(note.encode(), record.token, certificates(local_tsa))


def test_a_token_the_authority_did_not_sign_for_us_is_not_stored(
    audit_database: str, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    other = make_authority(tmp_path / "other", name="Other")
    with serving(other) as impostor:
        stored = timestamping.timestamp_pending(
            audit_database, [checkpoint_note(5)], impostor.url, 10, certificates(local_tsa)
        )
    assert stored == 0 and timestamping.stored_timestamps(audit_database) == {}


@contextmanager
def answering(body: bytes) -> Iterator[str]:
    """A server that answers every POST with ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsr"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
