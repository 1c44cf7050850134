"""C2SP signed notes, checkpoints and cosignatures (``signed-note``, ``tlog-checkpoint``,
``tlog-cosignature``): the text formats transparency logs and their witnesses exchange.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(4-byte key hash || signature)``. The log signs with Ed25519 (signature
type 0x01, over the text); a witness cosigns with Ed25519 (type 0x04, over
``cosignature/v1\\ntime <seconds>\\n`` and the text, the signature preceded by its 8-byte
time). A key hash is ``SHA-256(name || "\\n" || type || public key)[:4]``; a verifier key
("vkey") is ``name+hex(key hash)+base64(type || public key)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"


class NoteError(Exception):
    """A note, key or signature that is malformed or does not verify."""


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, algorithm: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    name: str
    algorithm: int
    public: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.algorithm, self.public)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([self.algorithm]) + self.public).decode()
        return f"{self.name}+{self.hash.hex()}+{material}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        try:
            name, hash_hex, encoded = text.strip().split("+", 2)
            material = base64.b64decode(encoded, validate=True)
            given = bytes.fromhex(hash_hex)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("not a verifier key: expected name+keyhash+base64key") from exc
        if not name or len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError(f"verifier key {name!r} is not an Ed25519 key (type 0x01 or 0x04)")
        key = cls(name, material[0], material[1:])
        if key.hash != given:
            raise NoteError(f"verifier key {name!r} carries a key hash that is not its own")
        return key


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes  # for a cosignature: the 8-byte time, then the signature

    @property
    def line(self) -> str:
        return f"{EM_DASH} {self.name} {base64.b64encode(self.key_hash + self.signature).decode()}"

    @property
    def timestamp(self) -> int:
        """A cosignature's time (seconds since the epoch)."""
        return int(struct.unpack(">Q", self.signature[:8])[0])


@dataclass(frozen=True)
class Note:
    text: str  # ends in a newline
    signatures: tuple[Signature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line + "\n" for s in self.signatures)

    def with_signatures(self, *added: Signature) -> Note:
        return Note(
            self.text, self.signatures + tuple(s for s in added if s not in self.signatures)
        )

    @classmethod
    def parse(cls, note: str) -> Note:
        if "\n\n" not in note:
            raise NoteError("not a signed note: no blank line before the signatures")
        if any(c < " " and c != "\n" for c in note):
            raise NoteError("a signed note holds no control characters but line feeds")
        text, _, block = note.rpartition("\n\n")
        text += "\n"
        signatures = []
        for line in block.split("\n"):
            if not line:
                continue
            if not line.startswith(EM_DASH + " "):
                raise NoteError("a signature line must start with an em dash and a space")
            name, _, encoded = line[2:].rpartition(" ")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise NoteError(f"the signature of {name!r} is not base64") from exc
            if not name or len(raw) < 5:
                raise NoteError("a signature line needs a key name and a signature")
            signatures.append(Signature(name, raw[:4], raw[4:]))
        if not signatures:
            raise NoteError("a signed note needs at least one signature")
        return cls(text, tuple(signatures))


def sign(text: str, name: str, key: Ed25519PrivateKey) -> Signature:
    """The log's signature (type 0x01) over a note's text."""
    return Signature(name, key_hash(name, ED25519, raw_public(key)), key.sign(text.encode()))


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> Signature:
    """A witness's cosignature (type 0x04) over a checkpoint's text at ``timestamp``."""
    signature = key.sign(cosignature_message(text, timestamp))
    return Signature(
        name,
        key_hash(name, COSIGNATURE_V1, raw_public(key)),
        struct.pack(">Q", timestamp) + signature,
    )


def signed_by(note: Note, key: VerifierKey) -> Signature | None:
    """The signature of ``key`` on ``note`` when it verifies (of several cosignatures by that
    key, the newest); None when the note carries none by that key. A signature by that key that
    does not verify raises :class:`NoteError`."""
    found: Signature | None = None
    for signature in note.signatures:
        if signature.name != key.name or signature.key_hash != key.hash:
            continue
        if key.algorithm == COSIGNATURE_V1:
            if len(signature.signature) != 72:
                raise NoteError(f"the cosignature of {key.name!r} is not 72 bytes")
            message = cosignature_message(note.text, signature.timestamp)
            raw = signature.signature[8:]
        else:
            message, raw = note.text.encode(), signature.signature
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(raw, message)
        except InvalidSignature:
            raise NoteError(f"the signature of {key.name!r} does not verify") from None
        if found is None or (
            key.algorithm == COSIGNATURE_V1 and signature.timestamp > found.timestamp
        ):
            found = signature
    return found


# --- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
            raise NoteError("a checkpoint is an origin, a tree size and a root hash, one a line")
        origin, size, root = lines[:3]
        if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")):
            raise NoteError("the tree size is not a decimal number")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except binascii.Error as exc:
            raise NoteError("the root hash is not base64") from exc
        if len(root_hash) != 32:
            raise NoteError("the root hash is not 32 bytes")
        return cls(origin, int(size), root_hash)
