#!/usr/bin/env python3
"""Check a proof from the Return and Reintegration transparency log, with nothing of the project.

One file, the Python standard library and the `cryptography` package (for Ed25519). A family,
a journalist or the Public Council checks that an event (a decision, a lottery assignment) is
in a checkpoint the committee signed and can no longer change, or that a later checkpoint
extends an earlier one:

    python verify_transparency.py inclusion --checkpoint latest.txt --vkey VKEY \\
        --leaf CHAIN_LINK_HEX --index POSITION_INDEX --proof HASH,HASH,...
    python verify_transparency.py consistency --old old.txt --new new.txt --vkey VKEY \\
        --proof HASH,HASH,...

Give the witnesses' keys too (``--vkey`` of type 0x04, ``--quorum N``): the checkpoint then
counts only when that many of them cosigned it (C2SP tlog-cosignature), so that the committee
cannot show you a history it shows nobody else.

What it implements, from the public specifications only:

- the Merkle tree of RFC 9162 (section 2.1): a leaf hash is SHA-256(0x00 || leaf), an interior
  node SHA-256(0x01 || left || right); the verification of inclusion proofs (2.1.3.2) and of
  consistency proofs (2.1.4.2);
- checkpoints as C2SP tlog-checkpoint notes (origin, tree size, root hash) signed as C2SP
  signed notes, verified with verifier keys ("vkeys": name+keyid+base64(0x01 || Ed25519 key)).
  A note counts only when a signature by a given vkey verifies; signatures by other keys are
  ignored, as the specification says.

Proof hashes are given in base64 (or hex), comma-separated, or as a file holding a JSON object
with a "hashes" list. Exit 0 when everything verifies, 1 with the reason when not.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"
ED25519 = 0x01
COSIGNATURE_V1 = 0x04  # a witness's timestamped Ed25519 cosignature (C2SP tlog-cosignature)


class NotVerified(Exception):
    """What did not verify, in words a reader can act on."""


# --- RFC 9162 Merkle trees -----------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162, 2.1.3.2: that the leaf hash ``leaf`` is at ``index`` in the tree of ``size``
    leaves whose root is ``root``."""
    if not 0 <= index < size:
        raise NotVerified(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise NotVerified("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise NotVerified("the inclusion proof is shorter than the tree is deep")
    if r != root:
        raise NotVerified("the inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(
    first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162, 2.1.4.2: that the tree of ``second`` leaves extends the one of ``first``."""
    if not 0 <= first <= second:
        raise NotVerified(f"a tree of {second} leaves cannot extend one of {first}")
    if first == second:
        if proof or first_root != second_root:
            raise NotVerified("two checkpoints of the same size have different root hashes")
        return
    if first == 0:
        if proof:
            raise NotVerified("a proof from the empty tree must be empty")
        return
    if not proof:
        raise NotVerified("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise NotVerified("the consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise NotVerified("the consistency proof is shorter than the trees are deep")
    if fr != first_root:
        raise NotVerified("the consistency proof does not lead to the older root hash")
    if sr != second_root:
        raise NotVerified("the consistency proof does not lead to the newer root hash")


# --- C2SP signed notes and checkpoints -----------------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    public: bytes
    kind: int = ED25519  # 0x01: the log's signature; 0x04: a witness's cosignature

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        try:
            name, key_id_hex, encoded = text.strip().split("+", 2)  # base64 may hold "+"
            key_id = bytes.fromhex(key_id_hex)
            material = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise NotVerified(f"not a verifier key (name+keyid+key): {text!r}") from exc
        if len(key_id) != 4 or len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
            raise NotVerified(f"not an Ed25519 verifier key (type 0x01 or 0x04): {text!r}")
        kind, public = material[0], material[1:]
        expected = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]
        if expected != key_id:
            raise NotVerified(f"the verifier key {name!r} has a key id that is not its own")
        return cls(name, key_id, public, kind)


def verified_text(
    note: str, keys: list[VerifierKey], quorum: int | None = None
) -> tuple[str, list[str]]:
    """The text of a signed note, once a signature by one of the log's ``keys`` (type 0x01)
    verifies and, when witnesses' keys (type 0x04) are given, cosignatures by ``quorum`` of
    them (default: all); and the names of the keys that signed. A signature by a given key
    that fails rejects the note; signatures by other keys are ignored."""
    if "\n\n" not in note:
        raise NotVerified("not a signed note: no blank line before the signatures")
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    signed_by = []
    for line in signatures.splitlines():
        if not line:
            continue
        if not line.startswith(EM_DASH + " "):
            raise NotVerified(f"not a signature line: {line[:40]!r}")
        name, _, encoded = line[2:].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NotVerified(f"a signature of {name!r} is not base64") from exc
        for key in keys:
            if key.name == name and key.key_id == raw[:4]:
                if key.kind == COSIGNATURE_V1:
                    if len(raw) != 4 + 8 + 64:
                        raise NotVerified(f"the cosignature of {name!r} is not 72 bytes")
                    when = int.from_bytes(raw[4:12], "big")
                    message = f"cosignature/v1\ntime {when}\n{text}".encode()
                    signature = raw[12:]
                else:
                    message, signature = text.encode(), raw[4:]
                try:
                    Ed25519PublicKey.from_public_bytes(key.public).verify(signature, message)
                except InvalidSignature:
                    raise NotVerified(f"the signature of {name!r} does not verify") from None
                if name not in signed_by:
                    signed_by.append(name)
    logs = {k.name for k in keys if k.kind == ED25519}
    witnesses = {k.name for k in keys if k.kind == COSIGNATURE_V1}
    if not logs & set(signed_by):
        raise NotVerified("no signature by a log key you trust verifies this note")
    needed = len(witnesses) if quorum is None else quorum
    cosigned = witnesses & set(signed_by)
    if len(cosigned) < needed:
        raise NotVerified(
            f"cosigned by {len(cosigned)} of the witnesses you trust, not {needed}: nobody "
            "outside vouches that this is the history everyone else is shown"
        )
    return text, signed_by


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    signed_by: list[str]

    @classmethod
    def verified(cls, note: str, keys: list[VerifierKey], quorum: int | None = None) -> Checkpoint:
        text, signed_by = verified_text(note, keys, quorum)
        lines = text.split("\n")[:-1]
        if len(lines) < 3:
            raise NotVerified("a checkpoint has an origin, a tree size and a root hash")
        origin, size_text, root_text = lines[:3]
        if not (size_text.isascii() and size_text.isdigit()) or (
            size_text != "0" and size_text.startswith("0")
        ):
            raise NotVerified(f"the tree size {size_text!r} is not a decimal number")
        root = base64.b64decode(root_text)
        if len(root) != 32:
            raise NotVerified("the root hash is not 32 bytes")
        return cls(origin, int(size_text), root, signed_by)


# --- the command line ----------------------------------------------------------------------


def _hash(text: str) -> bytes:
    text = text.strip()
    try:
        found = bytes.fromhex(text)
    except ValueError:
        found = base64.b64decode(text)
    if len(found) != 32:
        raise NotVerified(f"not a 32-byte hash: {text!r}")
    return found


def _proof(given: str) -> list[bytes]:
    path = Path(given)
    try:
        is_file = path.is_file()
    except OSError:  # hashes too long to be a file name
        is_file = False
    if is_file:
        return [_hash(h) for h in json.loads(path.read_text())["hashes"]]
    return [_hash(h) for h in given.split(",") if h.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inclusion = commands.add_parser("inclusion", help="an event is in a signed checkpoint")
    inclusion.add_argument("--checkpoint", required=True, help="the checkpoint note (a file)")
    inclusion.add_argument("--leaf", required=True, help="the event's chain link (hex)")
    inclusion.add_argument("--index", required=True, type=int, help="its leaf index")
    consistency = commands.add_parser("consistency", help="a checkpoint extends an older one")
    consistency.add_argument("--old", required=True, help="the older checkpoint note")
    consistency.add_argument("--new", required=True, help="the newer checkpoint note")
    for command in (inclusion, consistency):
        command.add_argument(
            "--vkey",
            action="append",
            required=True,
            help="a key you trust: the log's (type 0x01) and the witnesses' (type 0x04)",
        )
        command.add_argument(
            "--quorum", type=int, help="how many of the witnesses must cosign (default: all)"
        )
        command.add_argument("--proof", default="", help="hashes, comma-separated, or a file")
    args = parser.parse_args(argv)
    try:
        keys = [VerifierKey.parse(k) for k in args.vkey]
        if args.command == "inclusion":
            checkpoint = Checkpoint.verified(
                Path(args.checkpoint).read_text("utf-8"), keys, args.quorum
            )
            leaf = leaf_hash(_hash(args.leaf))
            verify_inclusion(leaf, args.index, checkpoint.size, _proof(args.proof), checkpoint.root)
            print(
                f"verified: leaf {args.index} is in {checkpoint.origin} at tree size "
                f"{checkpoint.size}, signed by {', '.join(checkpoint.signed_by)}"
            )
        else:
            old = Checkpoint.verified(Path(args.old).read_text("utf-8"), keys, args.quorum)
            new = Checkpoint.verified(Path(args.new).read_text("utf-8"), keys, args.quorum)
            if old.origin != new.origin:
                raise NotVerified(f"two different logs: {old.origin!r} and {new.origin!r}")
            verify_consistency(old.size, new.size, _proof(args.proof), old.root, new.root)
            print(f"verified: {new.origin} at {new.size} extends it at {old.size}")
    except NotVerified as exc:
        print(f"NOT verified: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
