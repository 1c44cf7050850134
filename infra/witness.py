"""A witness of the transparency log (C2SP ``tlog-witness`` in spirit, over this log's HTTP API).

An institution outside the committee (the Public Council, the Chamber of Accounts) runs it
with its own key and its own state, a directory on its own machine. Each round it fetches the
latest checkpoint, checks the log's signature, checks that the checkpoint extends the last one
it cosigned (an RFC 9162 consistency proof), cosigns it (C2SP ``tlog-cosignature``, Ed25519,
with the time) and sends the cosigned note back. A checkpoint that does not extend the one it
signed is refused: the witness keeps both signed checkpoints as evidence of the fork and keeps
refusing, so the log cannot show one history to the witness and another to someone else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import merkle
from infra.signed_note import (
    COSIGNATURE_V1,
    CheckpointBody,
    Note,
    NoteError,
    VerifierKey,
    cosign,
    raw_public,
    signed_by,
)

log = structlog.get_logger(__name__)


class WitnessRefused(Exception):
    """The witness did not cosign: the checkpoint is not the log's, or is malformed."""


class ForkDetected(WitnessRefused):
    """The log showed a checkpoint that does not extend one the witness signed."""

    def __init__(self, reason: str, evidence: Path) -> None:
        super().__init__(f"{reason}; evidence kept in {evidence}")
        self.evidence = evidence


class Log(Protocol):
    def latest(self) -> str: ...

    def consistency(self, old: int, new: int) -> list[bytes]: ...

    def submit(self, note: str) -> None: ...


class HttpLog:
    """The log's public transparency endpoints (``/api/v1/audit/...``), over HTTP."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def latest(self) -> str:
        return self._get("/api/v1/audit/checkpoints/latest").decode("utf-8")

    def consistency(self, old: int, new: int) -> list[bytes]:
        found = json.loads(self._get(f"/api/v1/audit/proofs/consistency?from={old}&to={new}"))
        return [base64.b64decode(h) for h in found["hashes"]]

    def submit(self, note: str) -> None:
        request = urllib.request.Request(
            self.base + "/api/v1/audit/checkpoints/cosignatures",
            data=note.encode(),
            method="POST",
            headers={"content-type": "text/plain; charset=utf-8"},
        )
        self._open(request)

    def _get(self, path: str) -> bytes:
        return self._open(urllib.request.Request(self.base + path))

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            detail = ""
            with contextlib.suppress(ValueError):
                detail = json.loads(exc.read()).get("detail", "")
            raise WitnessRefused(f"the log answered {exc.code} {detail}".strip()) from None


class WitnessState:
    """What the witness signed, in a directory of its own: ``latest.note`` (the last checkpoint
    it cosigned, as the log signed it) and ``forks/`` (evidence)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def latest_path(self) -> Path:
        return self.directory / "latest.note"

    def latest(self) -> str | None:
        return self.latest_path.read_text("utf-8") if self.latest_path.exists() else None

    def save(self, note: str) -> None:
        temporary = self.latest_path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            file.write(note)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.latest_path)

    def keep_fork(self, signed: str, shown: str, reason: str) -> Path:
        forks = self.directory / "forks"
        forks.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = forks / f"fork-{stamp}.json"
        path.write_text(
            json.dumps({"reason": reason, "cosigned_before": signed, "shown_now": shown}, indent=2),
            "utf-8",
        )
        return path


@dataclass(frozen=True)
class Cosigned:
    tree_size: int
    previous_size: int
    note: str


class Witness:
    def __init__(
        self,
        name: str,
        key: Ed25519PrivateKey,
        log_keys: list[VerifierKey],
        state: WitnessState,
        log_: Log,
    ) -> None:
        if not log_keys:
            raise WitnessRefused("the log's verifier key is needed (--log-vkey)")
        self.name = name
        self.key = key
        self.log_keys = log_keys
        self.state = state
        self.log = log_

    @property
    def vkey(self) -> str:
        return str(VerifierKey(self.name, COSIGNATURE_V1, raw_public(self.key)))

    def witness_once(self) -> Cosigned:
        """Fetch, check and cosign the log's latest checkpoint; send the cosignature back."""
        shown_text = self.log.latest()
        shown, body = self._log_signed(shown_text)
        previous_size = 0
        signed_text = self.state.latest()
        if signed_text is not None:
            _, signed = self._log_signed(signed_text)
            previous_size = signed.size
            self._check_extends(signed, body, signed_text, shown_text)
        cosignature = cosign(shown.text, self.name, self.key, int(time.time()))
        self.state.save(str(shown))
        cosigned = str(shown.with_signatures(cosignature))
        self.log.submit(cosigned)
        log.info("checkpoint cosigned", tree_size=body.size, previous_size=previous_size)
        return Cosigned(body.size, previous_size, cosigned)

    def _log_signed(self, text: str) -> tuple[Note, CheckpointBody]:
        """The note with only the log's own signatures, once one verifies."""
        try:
            note = Note.parse(text)
            body = CheckpointBody.parse(note.text)
            mine = [
                s
                for key in self.log_keys
                if key.name == body.origin
                for s in [signed_by(note, key)]
                if s is not None
            ]
        except NoteError as exc:
            raise WitnessRefused(f"not a checkpoint of the log: {exc}") from None
        if not mine:
            raise WitnessRefused(
                f"the checkpoint of {body.origin!r} is not signed by a key given with --log-vkey"
            )
        return Note(note.text, tuple(mine)), body

    def _check_extends(
        self, signed: CheckpointBody, shown: CheckpointBody, signed_text: str, shown_text: str
    ) -> None:
        reason = None
        if shown.origin != signed.origin:
            raise WitnessRefused(f"another log: {shown.origin!r}, not {signed.origin!r}")
        if shown.size < signed.size:
            reason = f"the log shows {shown.size} leaves after the witness cosigned {signed.size}"
        elif shown.size == signed.size and shown.root != signed.root:
            reason = f"two different root hashes for the same tree size {shown.size}"
        elif shown.size > signed.size:
            try:
                proof = self.log.consistency(signed.size, shown.size)
                merkle.verify_consistency(signed.size, shown.size, proof, signed.root, shown.root)
            except merkle.ProofError as exc:
                reason = f"tree size {shown.size} does not extend the cosigned {signed.size}: {exc}"
        if reason is not None:
            evidence = self.state.keep_fork(signed_text, shown_text, reason)
            log.error("fork detected: checkpoint refused", evidence=str(evidence))
            raise ForkDetected(reason, evidence)
