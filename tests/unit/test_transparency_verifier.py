"""The standalone verifier (tools/verify_transparency.py) checks RFC 9162 proofs and C2SP signed
checkpoints, and refuses anything changed by one byte. Proofs come from a reference
implementation of RFC 9162's definitions (2.1.1 to 2.1.4), written here independently."""

from __future__ import annotations

import ast
import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from tests.support import STANDALONE_VERIFIER as TOOL
from tests.support import standalone_verifier

tool = standalone_verifier()


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies_and_a_changed_byte_is_refused(
    case: tuple[int, int],
) -> None:
    n, m = case
    leaves = leaves_of(n)
    root, proof = mth(leaves), path(m, leaves)
    tool.verify_inclusion(tool.leaf_hash(leaves[m]), m, n, proof, root)
    with pytest.raises(tool.NotVerified):
        tool.verify_inclusion(tool.leaf_hash(leaves[m] + b"!"), m, n, proof, root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(tool.NotVerified):
            tool.verify_inclusion(tool.leaf_hash(leaves[m]), m, n, bad, root)
    if n > 1:
        with pytest.raises(tool.NotVerified):
            tool.verify_inclusion(tool.leaf_hash(leaves[m]), (m + 1) % n, n, proof, root)


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_every_consistency_proof_verifies_and_a_changed_byte_is_refused(
    case: tuple[int, int],
) -> None:
    m, n = case
    leaves = leaves_of(n)
    proof = subproof(m, leaves, True)
    old, new = mth(leaves[:m]), mth(leaves)
    tool.verify_consistency(m, n, proof, old, new)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(tool.NotVerified):
            tool.verify_consistency(m, n, bad, old, new)
    if m < n:
        forked = mth([*leaves[: m - 1], b"rewritten"])
        with pytest.raises(tool.NotVerified):
            tool.verify_consistency(m, n, proof, forked, new)


def test_the_c2sp_example_note_verifies_with_its_vkey_and_not_once_changed() -> None:
    vkey = tool.VerifierKey.parse(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    )
    note = (
        "This is an example message.\n\n"
        "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
        "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
    )
    text, signers = tool.verified_text(note, [vkey])
    assert text == "This is an example message.\n" and signers == ["example.com/foo"]
    with pytest.raises(tool.NotVerified, match="does not verify"):
        tool.verified_text(note.replace("example message", "example massage"), [vkey])
    other = tool.VerifierKey.parse(make_vkey("example.com/other", Ed25519PrivateKey.generate()))
    with pytest.raises(tool.NotVerified, match="no signature by a log key you trust"):
        tool.verified_text(note, [other])


def make_vkey(name: str, key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    material = base64.b64encode(bytes([1]) + public).decode()
    return f"{name}+{key_id.hex()}+{material}"


def signed_checkpoint(name: str, key: Ed25519PrivateKey, size: int, root: bytes) -> str:
    text = f"{name}\n{size}\n{base64.b64encode(root).decode()}\n"
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    signature = base64.b64encode(key_id + key.sign(text.encode())).decode()
    return f"{text}\n\u2014 {name} {signature}\n"


def test_the_command_line_checks_an_event_in_a_checkpoint_and_one_checkpoint_extending_another(
    tmp_path: Path,
) -> None:
    key, name = Ed25519PrivateKey.generate(), "reintegration.example/log"
    vkey = make_vkey(name, key)
    leaves = leaves_of(21)
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text(signed_checkpoint(name, key, 13, mth(leaves[:13])), "utf-8")
    new.write_text(signed_checkpoint(name, key, 21, mth(leaves)), "utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False
        )

    proof = ",".join(base64.b64encode(h).decode() for h in path(7, leaves))
    ok = run(
        "inclusion",
        "--checkpoint",
        str(new),
        "--vkey",
        vkey,
        "--leaf",
        leaves[7].hex(),
        "--index",
        "7",
        "--proof",
        proof,
    )
    assert ok.returncode == 0, ok.stderr
    assert "verified: leaf 7" in ok.stdout
    wrong = run(
        "inclusion",
        "--checkpoint",
        str(new),
        "--vkey",
        vkey,
        "--leaf",
        leaves[8].hex(),
        "--index",
        "7",
        "--proof",
        proof,
    )
    assert wrong.returncode == 1 and "NOT verified" in wrong.stderr

    consistency = ",".join(base64.b64encode(h).decode() for h in subproof(13, leaves, True))
    ok = run(
        "consistency", "--old", str(old), "--new", str(new), "--vkey", vkey, "--proof", consistency
    )
    assert ok.returncode == 0, ok.stderr
    forked = tmp_path / "forked.txt"
    forked.write_text(signed_checkpoint(name, key, 13, mth([*leaves[:12], b"x" * 32])), "utf-8")
    refused = run(
        "consistency",
        "--old",
        str(forked),
        "--new",
        str(new),
        "--vkey",
        vkey,
        "--proof",
        consistency,
    )
    assert refused.returncode == 1 and "older root hash" in refused.stderr


def test_the_verifier_imports_nothing_of_the_project() -> None:
    imported = set()
    for node in ast.walk(ast.parse(TOOL.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"cryptography", "__future__"}, imported


def test_a_checkpoint_counts_only_with_the_quorum_of_witnesses_it_is_given() -> None:
    """Cosignatures (C2SP tlog-cosignature, type 0x04) made by the project's witness are
    checked by the standalone verifier, which shares no code with it."""
    from infra.signed_note import COSIGNATURE_V1, Note, VerifierKey, cosign, raw_public

    log_key, council, chamber = (Ed25519PrivateKey.generate() for _ in range(3))
    note = signed_checkpoint("log.example/x", log_key, 7, bytes(32))
    text = Note.parse(note).text
    one = cosign(text, "council.example/w", council, 1_700_000_000)
    cosigned = str(Note.parse(note).with_signatures(one))
    keys = [
        tool.VerifierKey.parse(make_vkey("log.example/x", log_key)),
        tool.VerifierKey.parse(
            str(VerifierKey("council.example/w", COSIGNATURE_V1, raw_public(council)))
        ),
        tool.VerifierKey.parse(
            str(VerifierKey("chamber.example/w", COSIGNATURE_V1, raw_public(chamber)))
        ),
    ]
    with pytest.raises(tool.NotVerified, match="cosigned by 1 of the witnesses you trust, not 2"):
        tool.Checkpoint.verified(cosigned, keys)
    assert tool.Checkpoint.verified(cosigned, keys, quorum=1).signed_by == [
        "log.example/x",
        "council.example/w",
    ]
    forged = cosigned.replace(
        one.line, one.line[:-6] + ("A" if one.line[-6] != "A" else "B") + one.line[-5:]
    )
    with pytest.raises(tool.NotVerified, match="does not verify"):
        tool.Checkpoint.verified(forged, keys, quorum=1)
