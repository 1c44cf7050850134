"""The transparency log over the event log, attacked as an insider would: every event is in a
signed checkpoint anyone can check with the standalone verifier; witnesses cosign only
checkpoints that extend what they saw, and keep the evidence of a fork; `audit verify` asks
for a quorum of them; checkpoints carry an RFC 3161 timestamp."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import merkle, tamper_evidence, transparency_log
from infra.audit_trail import AuditTrail, ProofUnavailable
from infra.bootstrap import Container
from infra.config import AuditKey
from infra.signed_note import COSIGNATURE_V1, ED25519, Note, VerifierKey, cosign, raw_public, sign
from infra.witness import ForkDetected, Witness, WitnessState
from tests.integration.conftest import Stack, register_households
from tests.integration.test_tamper_evidence import positions, relink, sql
from tests.support import STANDALONE_VERIFIER, standalone_verifier

KEY = base64.b64encode(os.urandom(32)).decode()
PUBLISHED = AuditKey(tamper_evidence.public_key_bytes(tamper_evidence.signing_key(KEY)))
ORIGIN = "committee.example/reintegration-log"
LOG_VKEY = VerifierKey(ORIGIN, ED25519, PUBLISHED.public)
COUNCIL = Ed25519PrivateKey.generate()
CHAMBER = Ed25519PrivateKey.generate()
WITNESS_KEYS = (
    str(VerifierKey("public-council.example/w", COSIGNATURE_V1, raw_public(COUNCIL))),
    str(VerifierKey("chamber-of-accounts.example/w", COSIGNATURE_V1, raw_public(CHAMBER))),
)


class InProcessLog:
    """The log as a witness reaches it, without HTTP (the HTTP client is tested end to end)."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def latest(self) -> str:
        note = self.trail.checkpoint_note()
        assert note is not None
        return note

    def consistency(self, old: int, new: int) -> list[bytes]:
        return self.trail.consistency(old, new)

    def submit(self, note: str) -> None:
        self.trail.receive_cosignature(note)


@pytest.fixture
def logged(stack: Stack) -> Iterator[Stack]:
    """A log of a few dozen events with a signed checkpoint, witnesses configured (quorum 2)."""
    settings = replace(
        stack.settings,
        kafka_bootstrap_servers=None,  # the database alone: what an insider can change
        audit_signing_key=KEY,
        audit_public_keys=(PUBLISHED,),
        audit_log_origin=ORIGIN,
        audit_witnesses=WITNESS_KEYS,
        audit_witness_quorum=2,
    )
    container = Container(settings)
    container.projections.prepare()
    register_households(container, 10)
    assert container.audit_trail.write_checkpoint() is not None
    try:
        yield Stack(container, settings)
    finally:
        container.close()


def witness(stack: Stack, key: Ed25519PrivateKey, name: str, state: Path) -> Witness:
    return Witness(
        name, key, [LOG_VKEY], WitnessState(state), InProcessLog(stack.container.audit_trail)
    )


def council(stack: Stack, tmp_path: Path) -> Witness:
    return witness(stack, COUNCIL, "public-council.example/w", tmp_path / "council")


def chamber(stack: Stack, tmp_path: Path) -> Witness:
    return witness(stack, CHAMBER, "chamber-of-accounts.example/w", tmp_path / "chamber")


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STANDALONE_VERIFIER), *args], capture_output=True, text=True
    )


def test_every_event_is_proved_in_the_signed_checkpoint_by_the_standalone_verifier(
    logged: Stack, tmp_path: Path
) -> None:
    trail = logged.container.audit_trail
    note = trail.checkpoint_note()
    assert note is not None
    (tmp_path / "checkpoint.txt").write_text(note)
    everything = positions(logged)
    assert note.split("\n")[:2] == [ORIGIN, str(len(everything))]
    tool = standalone_verifier()
    checkpoint = tool.Checkpoint.verified(note, [tool.VerifierKey.parse(str(LOG_VKEY))])
    for position in everything:
        proof = trail.inclusion(position, None)
        tool.verify_inclusion(
            tool.leaf_hash(proof.leaf.chain_link),
            proof.leaf.index,
            checkpoint.size,
            proof.hashes,
            checkpoint.root,
        )
    proof = trail.inclusion(everything[5], None)
    done = run_verifier(
        "inclusion",
        "--checkpoint",
        str(tmp_path / "checkpoint.txt"),
        "--vkey",
        str(LOG_VKEY),
        "--leaf",
        proof.leaf.chain_link.hex(),
        "--index",
        str(proof.leaf.index),
        "--proof",
        ",".join(base64.b64encode(h).decode() for h in proof.hashes),
    )
    assert done.returncode == 0, done.stderr
    assert f"verified: leaf {proof.leaf.index} is in {ORIGIN}" in done.stdout


def test_a_proof_tampered_in_one_byte_is_refused_by_the_standalone_verifier(
    logged: Stack, tmp_path: Path
) -> None:
    trail = logged.container.audit_trail
    (tmp_path / "checkpoint.txt").write_text(trail.checkpoint_note() or "")
    proof = trail.inclusion(positions(logged)[3], None)
    hashes = list(proof.hashes)
    hashes[1] = bytes([hashes[1][0] ^ 0x01]) + hashes[1][1:]
    done = run_verifier(
        "inclusion",
        "--checkpoint",
        str(tmp_path / "checkpoint.txt"),
        "--vkey",
        str(LOG_VKEY),
        "--leaf",
        proof.leaf.chain_link.hex(),
        "--index",
        str(proof.leaf.index),
        "--proof",
        ",".join(h.hex() for h in hashes),
    )
    assert done.returncode == 1
    assert "NOT verified: the inclusion proof does not lead to the checkpoint's root" in (
        done.stderr
    )


def test_a_later_checkpoint_is_proved_to_extend_an_earlier_one(
    logged: Stack, tmp_path: Path
) -> None:
    trail = logged.container.audit_trail
    old = trail.checkpoint_note() or ""
    register_households(logged.container, 3)
    assert trail.write_checkpoint() is not None
    new = trail.checkpoint_note() or ""
    old_size, new_size = int(old.split("\n")[1]), int(new.split("\n")[1])
    assert new_size > old_size
    (tmp_path / "old.txt").write_text(old)
    (tmp_path / "new.txt").write_text(new)
    proof = trail.consistency(old_size, new_size)
    (tmp_path / "proof.json").write_text(
        json.dumps({"hashes": [base64.b64encode(h).decode() for h in proof]})
    )
    arguments = ["--old", str(tmp_path / "old.txt"), "--new", str(tmp_path / "new.txt")]
    done = run_verifier(
        "consistency", *arguments, "--vkey", str(LOG_VKEY), "--proof", str(tmp_path / "proof.json")
    )
    assert done.returncode == 0, done.stderr
    assert f"at {new_size} extends it at {old_size}" in done.stdout
    with pytest.raises(ProofUnavailable, match="not grown"):
        trail.consistency(old_size, new_size + 1)


def test_a_checkpoint_note_forged_under_an_unknown_key_is_refused(logged: Stack) -> None:
    forger = Ed25519PrivateKey.generate()
    register_households(logged.container, 1)
    trail = logged.container.audit_trail
    size = transparency_log.integrate(logged.settings.database_url or "", trail.chain_table)
    with psycopg.connect(logged.settings.database_url or "") as conn:
        root = transparency_log.root(conn, size)
        position, link = conn.execute(
            "SELECT notification_id, chain_hash FROM reintegration_events_chain "
            "ORDER BY 1 DESC LIMIT 1"
        ).fetchone() or (0, b"")
        text = f"{ORIGIN}\n{size}\n{base64.b64encode(root).decode()}\n"
        forged = str(Note(text, (sign(text, ORIGIN, forger),)))
        conn.execute(
            "INSERT INTO audit.checkpoints (position, chain_hash, created_at, key_id, signature, "
            "tree_size, root_hash, note) VALUES (%s, %s, now(), %s, %s, %s, %s, %s)",
            (
                position,
                link,
                tamper_evidence.key_id(raw_public(forger)),
                b"x" * 64,
                size,
                root,
                forged,
            ),
        )
    report = trail.verify("test")
    assert not report.ok
    assert any("signed by an unknown key" in f["problem"] for f in report.findings)


def test_witnesses_cosign_and_verification_requires_their_quorum(
    logged: Stack, tmp_path: Path
) -> None:
    trail = logged.container.audit_trail
    unwitnessed = trail.verify("test")
    assert not unwitnessed.ok
    assert any(
        "no checkpoint is cosigned by 2 of the witnesses" in f["problem"]
        for f in unwitnessed.findings
    )
    council(logged, tmp_path).witness_once()
    assert not trail.verify("test").ok  # one of two
    done = chamber(logged, tmp_path).witness_once()
    report = trail.verify("test")
    assert report.ok, report.to_text()
    assert report.summary["witnessed tree size"] == done.tree_size == len(positions(logged))
    served = Note.parse(trail.checkpoint_note() or "")
    assert {s.name for s in served.signatures} == {
        ORIGIN,
        "public-council.example/w",
        "chamber-of-accounts.example/w",
    }

    register_households(logged.container, 2)
    later = trail.verify("test")
    assert later.ok, later.to_text()
    assert any(f["problem"].startswith("not yet witnessed") for f in later.findings)


def test_events_after_a_witnessed_checkpoint_older_than_allowed_fail_verification(
    logged: Stack, tmp_path: Path
) -> None:
    council(logged, tmp_path).witness_once()
    chamber(logged, tmp_path).witness_once()
    register_households(logged.container, 1)
    time.sleep(1.2)
    strict = Container(replace(logged.settings, audit_witness_max_age_s=1))
    try:
        report = strict.audit_trail.verify("test")
    finally:
        strict.close()
    assert not report.ok
    assert any("are not witnessed" in f["problem"] for f in report.findings), report.findings


def test_a_witness_shown_a_rewritten_history_refuses_and_keeps_both_checkpoints(
    logged: Stack, tmp_path: Path
) -> None:
    """The insider holds the database and the signing key: edits an event, relinks the chain,
    removes the checkpoints and cosignatures, grows the tree again and signs the new history.
    The witnesses refuse it, and verification without Kafka fails."""
    council(logged, tmp_path).witness_once()
    chamber(logged, tmp_path).witness_once()
    signed_before = (tmp_path / "council" / "latest.note").read_text()
    target = positions(logged)[2]
    sql(
        logged,
        "UPDATE reintegration_events SET state = overlay(state placing '\\x43'::bytea from 20 "
        f"for 1) WHERE notification_id = {target}",
    )
    relink(logged)
    sql(
        logged,
        "ALTER TABLE audit.cosignatures DISABLE TRIGGER cosignatures_append_only",
        "ALTER TABLE audit.checkpoints DISABLE TRIGGER checkpoints_append_only",
        "DELETE FROM audit.cosignatures",
        "DELETE FROM audit.checkpoint_publications",
        "DELETE FROM audit.checkpoints",
    )
    trail = logged.container.audit_trail
    trail.rebuild_tree()
    register_households(logged.container, 1)
    assert trail.write_checkpoint() is not None

    with pytest.raises(ForkDetected, match="does not extend the cosigned") as refused:
        council(logged, tmp_path).witness_once()
    evidence = json.loads(refused.value.evidence.read_text())
    assert evidence["cosigned_before"] == signed_before
    assert evidence["shown_now"] == trail.checkpoint_note()
    assert (tmp_path / "council" / "latest.note").read_text() == signed_before
    with pytest.raises(ForkDetected):  # and again next round: it never moves on
        council(logged, tmp_path).witness_once()

    report = trail.verify("test")
    assert not report.ok
    assert any("no checkpoint is cosigned" in f["problem"] for f in report.findings)


def test_a_witness_refuses_a_log_that_shrinks_or_changes_a_root(
    logged: Stack, tmp_path: Path
) -> None:
    done = council(logged, tmp_path).witness_once()
    note = Note.parse(logged.container.audit_trail.checkpoint_note() or "")
    key = tamper_evidence.signing_key(KEY)
    for size, root in (
        (done.tree_size - 1, note.text.split("\n")[2]),
        (done.tree_size, "A" * 43 + "="),
    ):
        text = f"{ORIGIN}\n{size}\n{root}\n"
        forged = str(Note(text, (sign(text, ORIGIN, key),)))

        class Lying(InProcessLog):
            def latest(self) -> str:
                return forged  # noqa: B023

        liar = Witness(
            "public-council.example/w",
            COUNCIL,
            [LOG_VKEY],
            WitnessState(tmp_path / "council"),
            Lying(logged.container.audit_trail),
        )
        with pytest.raises(ForkDetected):
            liar.witness_once()
    assert len(list((tmp_path / "council" / "forks").iterdir())) == 2


def test_cosignatures_by_unknown_witnesses_or_that_do_not_verify_are_refused(
    logged: Stack,
) -> None:
    trail = logged.container.audit_trail
    note = Note.parse(trail.checkpoint_note() or "")
    stranger = Ed25519PrivateKey.generate()

    unknown = note.with_signatures(cosign(note.text, "stranger.example/w", stranger, 1))
    with pytest.raises(tamper_evidence.CosignatureRefused) as refused:
        trail.receive_cosignature(str(unknown))
    assert refused.value.status == 403
    good = cosign(note.text, "public-council.example/w", COUNCIL, int(time.time()))
    broken = replace(good, signature=good.signature[:20] + b"\x00" + good.signature[21:])
    with pytest.raises(tamper_evidence.CosignatureRefused) as refused:
        trail.receive_cosignature(str(note.with_signatures(broken)))
    assert refused.value.status == 422
    other = note.text.replace("\n", "\nx", 1)
    with pytest.raises(tamper_evidence.CosignatureRefused):
        trail.receive_cosignature(str(Note(other, (good,))))
    assert trail.receive_cosignature(str(note.with_signatures(good))) == [
        "public-council.example/w"
    ]
    assert trail.receive_cosignature(str(note.with_signatures(good))) == []  # kept once


def test_a_tile_changed_in_the_database_is_caught_and_the_tree_rebuilt(logged: Stack) -> None:
    url = logged.settings.database_url or ""
    with (
        psycopg.connect(url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="only grow"),
    ):  # the trigger refuses even a superuser's edit
        conn.execute(
            "UPDATE audit.tlog_tiles SET hashes = overlay(hashes placing '\\x00'::bytea "
            "from 1 for 1) WHERE level = 0 AND index = 0"
        )
    sql(
        logged,
        "ALTER TABLE audit.tlog_tiles DISABLE TRIGGER USER",  # a database administrator
        "UPDATE audit.tlog_tiles SET hashes = overlay(hashes placing '\\x00'::bytea from 1 "
        "for 1) WHERE level = 0 AND index = 0",
        "ALTER TABLE audit.tlog_tiles ENABLE TRIGGER USER",
    )
    register_households(logged.container, 1)
    with pytest.raises(transparency_log.TreeCorrupted, match="rebuild-tree"):
        logged.container.audit_trail.write_checkpoint()
    council_less = Container(replace(logged.settings, audit_witnesses=(), audit_witness_quorum=0))
    try:
        report = council_less.audit_trail.verify("test")
        assert not report.ok
        assert any("stored Merkle tree" in f["problem"] for f in report.findings)
        council_less.audit_trail.rebuild_tree()
        assert council_less.audit_trail.verify("test").ok
    finally:
        council_less.close()


def test_the_tree_grown_in_batches_equals_the_tree_rebuilt_at_once(logged: Stack) -> None:
    url = logged.settings.database_url or ""
    trail = logged.container.audit_trail
    for _ in range(3):
        register_households(logged.container, 2)
        transparency_log.integrate(url, trail.chain_table, batch=7)
    with psycopg.connect(url) as conn:
        size = transparency_log.size(conn)
        grown = transparency_log.root(conn, size)
    assert trail.rebuild_tree() == size == len(positions(logged))
    with psycopg.connect(url) as conn:
        assert transparency_log.root(conn, size) == grown
        links = [
            merkle.leaf_hash(bytes(r[0]))
            for r in conn.execute(
                "SELECT chain_hash FROM reintegration_events_chain ORDER BY notification_id"
            )
        ]
    compact = merkle.CompactRange()
    for leaf in links:
        compact.append(leaf)
    assert compact.root() == grown


def test_checkpoints_carry_a_timestamp_from_the_configured_authority(
    logged: Stack, local_tsa: object
) -> None:
    timestamped = Container(
        replace(
            logged.settings,
            audit_witnesses=(),
            audit_witness_quorum=0,
            audit_tsa_url="http://127.0.0.1:9/down",  # the authority is down at first
            audit_tsa_certificates=local_tsa.ca_pem,  # type: ignore[attr-defined]
        )
    )
    try:
        register_households(timestamped, 1)
        assert timestamped.audit_trail.write_checkpoint() is not None  # signed all the same
        assert (
            timestamped.audit_trail.verify("test").summary["checkpoints timestamped (RFC 3161)"]
            == 0
        )
    finally:
        timestamped.close()
    back = Container(
        replace(
            logged.settings,
            audit_witnesses=(),
            audit_witness_quorum=0,
            audit_tsa_url=local_tsa.url,  # type: ignore[attr-defined]
            audit_tsa_certificates=local_tsa.ca_pem,  # type: ignore[attr-defined]
        )
    )
    try:
        register_households(back, 1)
        assert back.audit_trail.write_checkpoint() is not None
        report = back.audit_trail.verify("test")
        assert report.ok, report.to_text()
        assert report.summary["checkpoints timestamped (RFC 3161)"] == 3  # the missed ones too
    finally:
        back.close()


def test_newest_events_removed_with_their_checkpoints_leave_an_old_quorum_that_fails(
    logged: Stack, tmp_path: Path
) -> None:
    """The insider deletes the newest events and the checkpoints and cosignatures after C:
    nothing follows C any more, but the quorum on C is old (the witnesses, shown C again,
    refuse a smaller tree than they cosigned)."""
    council(logged, tmp_path).witness_once()
    chamber(logged, tmp_path).witness_once()
    time.sleep(1.2)
    strict = Container(replace(logged.settings, audit_witness_max_age_s=1))
    try:
        report = strict.audit_trail.verify("test")
    finally:
        strict.close()
    assert not report.ok
    assert any("cosigned" in f["problem"] and "s ago" in f["problem"] for f in report.findings)


def test_a_checkpoint_kept_from_the_witnesses_fails_once_older_than_allowed(
    logged: Stack, tmp_path: Path
) -> None:
    council(logged, tmp_path).witness_once()
    chamber(logged, tmp_path).witness_once()
    register_households(logged.container, 1)
    assert logged.container.audit_trail.write_checkpoint() is not None  # never shown to them
    time.sleep(1.2)
    strict = Container(replace(logged.settings, audit_witness_max_age_s=1))
    try:
        report = strict.audit_trail.verify("test")
    finally:
        strict.close()
    assert not report.ok
    assert any("kept from the witnesses" in f["problem"] for f in report.findings), report.findings
