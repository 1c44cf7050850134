"""The audit pages' own logic: an inclusion proof's verdict, as the standalone verifier would
give it, and the audit envelope's summary in words."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.console import i18n
from api.console.pages.audit import check_inclusion, summary_lines
from infra import merkle
from infra.signed_note import ED25519, CheckpointBody, Note, VerifierKey, raw_public, sign

ORIGIN = "committee.example/log"
LINKS = [hashlib.sha256(f"event {i}".encode()).digest() for i in range(7)]
LOG_KEY = Ed25519PrivateKey.generate()
VKEY = str(VerifierKey(ORIGIN, ED25519, raw_public(LOG_KEY)))


def node(level: int, index: int) -> bytes:
    leaves = [merkle.leaf_hash(link) for link in LINKS]
    return merkle.complete_root(leaves[index << level : (index + 1) << level])


def proof_of(index: int, key: Ed25519PrivateKey = LOG_KEY) -> dict[str, Any]:
    size = len(LINKS)
    text = CheckpointBody(ORIGIN, size, merkle.root(size, node)).text
    note = Note(text, (sign(text, ORIGIN, key),))
    hashes = [merkle.range_hash(a, b, node) for a, b in merkle.inclusion_ranges(index, size)]
    return {
        "position": 100 + index,
        "leaf_index": index,
        "chain_link": LINKS[index].hex(),
        "tree_size": size,
        "hashes": [base64.b64encode(h).decode() for h in hashes],
        "checkpoint": str(note),
    }


def test_a_proof_that_leads_to_the_signed_root_is_proven() -> None:
    for index in range(len(LINKS)):
        verdict = check_inclusion(proof_of(index), [VKEY])
        assert verdict.ok, (index, verdict.problem)
        assert verdict.signed_by == ORIGIN and verdict.tree_size == len(LINKS)


def test_a_changed_hash_in_the_proof_is_not_proven() -> None:
    proof = proof_of(3)
    proof["hashes"][1] = base64.b64encode(b"\x00" * 32).decode()

    verdict = check_inclusion(proof, [VKEY])

    assert verdict.signed and not verdict.included and not verdict.ok
    assert verdict.problem and "root hash" in verdict.problem


def test_another_event_claiming_the_position_is_not_proven() -> None:
    proof = proof_of(2)
    proof["chain_link"] = LINKS[5].hex()

    assert not check_inclusion(proof, [VKEY]).included


def test_a_checkpoint_signed_by_a_key_not_the_logs_is_not_trusted() -> None:
    verdict = check_inclusion(proof_of(1, Ed25519PrivateKey.generate()), [VKEY])

    assert not verdict.signed and not verdict.ok
    assert verdict.problem == "no signature on the checkpoint verifies with the log's keys"


def test_a_proof_for_another_tree_size_than_its_checkpoint_is_not_proven() -> None:
    proof = proof_of(1) | {"tree_size": 6}

    verdict = check_inclusion(proof, [VKEY])

    assert verdict.signed and not verdict.ok
    assert verdict.problem and "6 leaves" in verdict.problem


def test_a_malformed_checkpoint_is_a_verdict_not_an_error() -> None:
    verdict = check_inclusion(proof_of(0) | {"checkpoint": "not a note"}, [VKEY, "junk"])

    assert not verdict.ok and verdict.problem and "signed note" in verdict.problem


def test_the_envelopes_summary_reads_in_azerbaijani() -> None:
    t = i18n.gettext("az")
    report = {
        "summary": {
            "events": 12,
            "checkpoints in Kafka": "not checked",
            "households: tables compared": 4,
            "households: rm_persons rows (rebuilt)": 9,
            "something new": 1,
        }
    }

    lines = summary_lines(report, t)

    assert lines == [
        ("Yoxlanılan hadisələr", 12),
        ("Kafkadakı nəzarət nöqtələri", "yoxlanılmayıb"),
        ("Ailələr və şəxslər: Müqayisə edilən cədvəllər", 4),
        ("Ailələr və şəxslər: Jurnaldan yenidən qurulan sətirlər, rm_persons cədvəli", 9),
        ("something new", 1),
    ]
