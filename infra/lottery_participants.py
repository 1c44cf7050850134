"""The lottery participants' published keys (LOTTERY_PARTICIPANT_KEYS): C2SP verifier keys of
type 0x01 whose names are the participants' names. A commitment counts only when signed by its
participant (:func:`domain.housing.commitment_message`)."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.signed_note import VerifierKey


class PublishedParticipantKeys:
    def __init__(self, vkeys: tuple[str, ...], origin: str) -> None:
        self.keys = {key.name: key for key in map(VerifierKey.parse, vkeys)}
        self._origin = origin

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    def signed(self, participant: str, message: bytes, signature: str) -> bool | None:
        key = self.keys.get(participant)
        if key is None:
            return None
        try:
            raw = base64.b64decode(signature or "", validate=True)
            Ed25519PublicKey.from_public_bytes(key.public).verify(raw, message)
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True
