"""Trusted time for checkpoints: RFC 3161 timestamps from an outside authority.

A signed checkpoint says what the log held; its own ``created_at`` is only the signer's word for
when. A timestamp token from an independent timestamping authority (TSA) proves that the
checkpoint note existed no later than the token's ``genTime``: whoever later holds the signing
key cannot backdate a rewritten log past a timestamped checkpoint.

After a checkpoint note is signed, ``timestamp_pending`` asks the TSA to timestamp the note's
UTF-8 bytes and stores the answer in ``audit.checkpoint_timestamps``; a note the TSA could not
timestamp (down, slow, refusing) is tried again at the next checkpoint. ``verify_timestamp``
checks a stored token against its note and the TSA's published certificates. Requests and
verification use ``rfc3161-client`` (the library sigstore-python uses); HTTP is the standard
library's. What is stored is the DER ``TimeStampResp``, which ``openssl ts -verify -in`` reads.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

log = structlog.get_logger(__name__)

SHA256 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_RESPONSE_BYTES = 1024 * 1024

TIMESTAMP_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
DO $$
BEGIN
    -- The same function audit.checkpoints and audit.access_log use (infra/tamper_evidence.py).
    IF to_regprocedure('audit.refuse_change()') IS NULL THEN
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $body$;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS audit.checkpoint_timestamps (
    tree_size    bigint NOT NULL,
    note_sha256  bytea NOT NULL,
    token        bytea NOT NULL,
    gen_time     timestamptz NOT NULL,
    tsa          text NOT NULL,
    PRIMARY KEY (tree_size, note_sha256)
);
DROP TRIGGER IF EXISTS checkpoint_timestamps_append_only ON audit.checkpoint_timestamps;
CREATE TRIGGER checkpoint_timestamps_append_only
    BEFORE UPDATE OR DELETE ON audit.checkpoint_timestamps
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS checkpoint_timestamps_no_truncate ON audit.checkpoint_timestamps;
CREATE TRIGGER checkpoint_timestamps_no_truncate
    BEFORE TRUNCATE ON audit.checkpoint_timestamps
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
"""

INSERT_TIMESTAMP = (
    "INSERT INTO audit.checkpoint_timestamps (tree_size, note_sha256, token, gen_time, tsa) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
SELECT_TIMESTAMPS = (
    "SELECT tree_size, note_sha256, token, gen_time, tsa FROM audit.checkpoint_timestamps "
    "ORDER BY tree_size, note_sha256"
)
SELECT_TIMESTAMPED = "SELECT tree_size, note_sha256 FROM audit.checkpoint_timestamps"


class TimestampError(Exception):
    """No usable timestamp. The message names the authority and the reason, never the data."""


class TimestampUnavailable(TimestampError):
    """The authority could not be reached in time, answered with an error, or refused: try
    again later."""


class TimestampInvalid(TimestampError):
    """A token that does not prove what it should: not for these bytes, not signed by the
    configured authority, altered, or not an answer to the request made."""


@dataclass(frozen=True)
class StoredTimestamp:
    """A row of ``audit.checkpoint_timestamps``. ``gen_time`` is a copy for queries: a verifier
    takes the time from the token (``verify_timestamp``), not from this column."""

    tree_size: int
    note_sha256: bytes
    token: bytes
    gen_time: datetime
    tsa: str


def prepare(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        # The lock infra/tamper_evidence.prepare takes: one session at a time changes `audit`.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('audit-schema'))")
        conn.execute(TIMESTAMP_DDL)


def request_timestamp(data: bytes, tsa_url: str, timeout_s: float) -> bytes:
    """Ask the authority at ``tsa_url`` to timestamp SHA-256(``data``); return its DER
    ``TimeStampResp`` once it is granted and answers this very request (same nonce, same
    message imprint). ``timeout_s`` bounds connecting and each read."""
    name = authority_name(tsa_url)
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http_request = urllib.request.Request(
        _checked_url(tsa_url),
        data=request.as_bytes(),
        method="POST",
        headers={
            "Content-Type": "application/timestamp-query",
            "Accept": "application/timestamp-reply",
        },
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout_s) as answer:
            body = answer.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise TimestampUnavailable(f"the TSA at {name} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        raise TimestampUnavailable(
            f"the TSA at {name} could not be reached: {reason} (timeout {timeout_s:g} s)"
        ) from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise TimestampUnavailable(f"the TSA at {name} sent more than {MAX_RESPONSE_BYTES} bytes")
    response = _decode(body, f"the TSA at {name} did not answer with a DER timestamp response")
    if response.status != PKIStatus.GRANTED:
        said = "; ".join(response.status_string)
        raise TimestampUnavailable(
            f"the TSA at {name} refused the request (status {_status_name(response.status)}"
            + (f": {said})" if said else ")")
        )
    info = response.tst_info
    if info.nonce != request.nonce:
        raise TimestampInvalid(f"the TSA at {name} answered with another request's nonce")
    if (
        info.message_imprint.hash_algorithm != SHA256
        or info.message_imprint.message != hashlib.sha256(data).digest()
    ):
        raise TimestampInvalid(f"the TSA at {name} timestamped other data than was sent")
    return response.as_bytes()


def verify_timestamp(data: bytes, token: bytes, tsa_certificates: Sequence[bytes]) -> datetime:
    """Check that ``token`` (a DER ``TimeStampResp``) timestamps exactly ``data`` (SHA-256),
    is signed by a certificate with the critical timeStamping extended key usage that chains,
    valid at the token's time, to ``tsa_certificates`` (PEM: the authority's root, and any
    intermediate certificates); return the token's ``genTime`` (UTC).

    Every certificate given is trusted: pass only the authority's published chain.
    """
    certificates = load_certificates(tsa_certificates)
    roots = [c for c in certificates if c.subject == c.issuer] or certificates
    builder = VerifierBuilder()
    for certificate in roots:
        builder = builder.add_root_certificate(certificate)
    for certificate in certificates:
        if certificate not in roots:
            builder = builder.add_intermediate_certificate(certificate)
    response = _decode(token, "the token is not a DER timestamp response")
    try:
        builder.build().verify(response, hashlib.sha256(data).digest())
        if response.tst_info.message_imprint.hash_algorithm != SHA256:
            raise TimestampInvalid("the token does not verify: it is not over SHA-256")
        return response.tst_info.gen_time.astimezone(UTC)
    except VerificationError as error:
        raise TimestampInvalid(f"the token does not verify: {_reason(error)}") from None
    except ValueError:  # from the library's parsing of the token's inner parts
        raise TimestampInvalid("the token does not verify: it is malformed") from None


def load_certificates(pems: Iterable[bytes]) -> list[x509.Certificate]:
    """The certificates of one or more PEM texts (each may hold several)."""
    certificates: list[x509.Certificate] = []
    for pem in pems:
        try:
            certificates.extend(x509.load_pem_x509_certificates(pem))
        except ValueError:
            raise TimestampInvalid("the TSA certificates are not PEM certificates") from None
    if not certificates:
        raise TimestampInvalid("no TSA certificate to verify the token with")
    return certificates


def read_certificates(path: str) -> list[bytes]:
    """The PEM file of ``AUDIT_TSA_CERTIFICATES``, as ``verify_timestamp`` takes it."""
    with open(path, "rb") as pem:
        return [pem.read()]


def note_sha256(note: str) -> bytes:
    return hashlib.sha256(note.encode("utf-8")).digest()


def note_tree_size(note: str) -> int:
    """The tree size of a C2SP checkpoint note (its second line)."""
    lines = note.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise ValueError("not a checkpoint note: its second line is not a tree size")
    return int(lines[1])


def authority_name(tsa_url: str) -> str:
    """The authority's URL as stored and logged: without credentials, query or fragment."""
    parts = urllib.parse.urlsplit(tsa_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def store_timestamp(
    conn_or_url: psycopg.Connection[Any] | str,
    tree_size: int,
    note: str,
    token: bytes,
    gen_time: datetime,
    tsa: str,
) -> bool:
    """Keep the token of checkpoint note ``note``; False when that note already has one."""
    row = (tree_size, note_sha256(note), token, gen_time, authority_name(tsa))
    if isinstance(conn_or_url, str):
        with psycopg.connect(conn_or_url) as conn:
            return conn.execute(INSERT_TIMESTAMP, row).rowcount == 1
    return conn_or_url.execute(INSERT_TIMESTAMP, row).rowcount == 1


def stored_timestamps(database_url: str) -> dict[tuple[int, bytes], StoredTimestamp]:
    """Every stored token, by (tree size, SHA-256 of the note's UTF-8 bytes)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(SELECT_TIMESTAMPS).fetchall()
    return {
        (r[0], bytes(r[1])): StoredTimestamp(
            r[0], bytes(r[1]), bytes(r[2]), r[3].astimezone(UTC), r[4]
        )
        for r in rows
    }


def timestamp_pending(
    database_url: str,
    notes: Iterable[str],
    tsa_url: str,
    timeout_s: float,
    tsa_certificates: Sequence[bytes],
) -> int:
    """Timestamp, in the order given, each checkpoint note that has no stored token; store
    each token once it verifies. At the first failure, log one line and stop: the rest waits
    for the next call (the next checkpoint). Returns how many were stored."""
    with psycopg.connect(database_url) as conn:
        done = {(r[0], bytes(r[1])) for r in conn.execute(SELECT_TIMESTAMPED).fetchall()}
    stored = 0
    for note in notes:
        tree_size = note_tree_size(note)
        if (tree_size, note_sha256(note)) in done:
            continue
        data = note.encode("utf-8")
        try:
            token = request_timestamp(data, tsa_url, timeout_s)
            gen_time = verify_timestamp(data, token, tsa_certificates)
        except TimestampError as error:
            log.warning(
                "checkpoint not timestamped; retried at the next checkpoint",
                tree_size=tree_size,
                tsa=authority_name(tsa_url),
                reason=str(error),
            )
            break
        stored += store_timestamp(database_url, tree_size, note, token, gen_time, tsa_url)
    return stored


def _decode(body: bytes, problem: str) -> TimeStampResponse:
    try:
        return decode_timestamp_response(body)
    except ValueError:
        raise TimestampInvalid(problem) from None


def _checked_url(tsa_url: str) -> str:
    if urllib.parse.urlsplit(tsa_url).scheme not in ("http", "https"):
        raise TimestampUnavailable(f"the TSA URL {authority_name(tsa_url)!r} is not http(s)")
    return tsa_url


def _status_name(status: int) -> str:
    try:
        return PKIStatus(status).name
    except ValueError:
        return str(status)


def _reason(error: Exception) -> str:
    reasons = {
        "Mismatch between messages": "it is for other data",
        "PKIStatus is not GRANTED": "the authority did not grant it",
    }
    text = str(error)
    if text.startswith("Error while verifying certificates"):
        return "its signature or certificate chain does not lead to the configured TSA certificates"
    return reasons.get(text, text)
