"""The transparency log over HTTP, as a family, a journalist and a witness use it: no token, a
C2SP checkpoint, RFC 9162 proofs checked with the standalone verifier, and a witness run with
`reintegration witness run` cosigning the checkpoint and sending it back."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import tamper_evidence
from infra.signed_note import COSIGNATURE_V1, ED25519, Note, VerifierKey, cosign
from tests.e2e.conftest import start_service
from tests.support import ROOT, household_body, random_fin, standalone_verifier, wait_until

ORIGIN = "committee.example/reintegration-log"


def test_a_family_proves_its_event_is_in_a_checkpoint_a_witness_cosigned(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    seed = base64.b64encode(os.urandom(32)).decode()
    log_vkey = str(
        VerifierKey(
            ORIGIN, ED25519, tamper_evidence.public_key_bytes(tamper_evidence.signing_key(seed))
        )
    )
    made = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "witness", "keygen", "--name", "council.example/w"],
        capture_output=True,
        text=True,
        check=True,
    )
    witness_seed = made.stdout.splitlines()[0].split("=", 1)[1]
    witness_vkey = made.stdout.splitlines()[2]
    assert VerifierKey.parse(witness_vkey).algorithm == COSIGNATURE_V1
    for service in start_service(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "AUDIT_SIGNING_KEY": seed,
            "AUDIT_CHECKPOINT_INTERVAL_S": "1",
            "AUDIT_LOG_ORIGIN": ORIGIN,
            "AUDIT_WITNESSES": witness_vkey,
        },
    ):
        with service.client("operator") as operator:
            answer = operator.post("/api/v1/households", json=household_body(random_fin()))
            assert answer.status_code == 201, answer.text
            position = int(answer.headers["Log-Position"])
        anyone = httpx.Client(base_url=service.base_url, timeout=30)  # no token

        def checkpoint_covering(
            anyone: httpx.Client = anyone, position: int = position
        ) -> str | None:
            latest = anyone.get("/api/v1/audit/checkpoints/latest")
            if latest.status_code != 200:
                return None
            proof = anyone.get(f"/api/v1/audit/proofs/inclusion/{position}")
            return latest.text if proof.status_code == 200 else None

        note = wait_until(checkpoint_covering, timeout_s=30, what="a checkpoint with the event")
        assert anyone.get("/api/v1/audit/public-key").json()["vkey"] == log_vkey
        assert (
            "text/plain" in anyone.get("/api/v1/audit/checkpoints/latest").headers["content-type"]
        )

        proof = anyone.get(f"/api/v1/audit/proofs/inclusion/{position}").json()
        tool = standalone_verifier()
        checkpoint = tool.Checkpoint.verified(
            proof["checkpoint"], [tool.VerifierKey.parse(log_vkey)]
        )
        tool.verify_inclusion(
            tool.leaf_hash(bytes.fromhex(proof["chain_link"])),
            proof["leaf_index"],
            checkpoint.size,
            [base64.b64decode(h) for h in proof["hashes"]],
            checkpoint.root,
        )

        witnessed = subprocess.run(
            [
                str(ROOT / ".venv/bin/reintegration"),
                "witness",
                "run",
                "--once",
                "--log",
                service.base_url,
                "--name",
                "council.example/w",
                "--log-vkey",
                log_vkey,
                "--state",
                str(tmp_path / "witness"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "WITNESS_SIGNING_KEY": witness_seed},
        )
        assert witnessed.returncode == 0, witnessed.stdout + witnessed.stderr
        size = int(note.split("\n")[1])
        served = Note.parse(anyone.get(f"/api/v1/audit/checkpoints/{size}").text)
        assert "council.example/w" in {s.name for s in served.signatures}

        with service.client("operator") as operator:
            operator.post("/api/v1/households", json=household_body(random_fin()))

        def grown(anyone: httpx.Client = anyone, size: int = size) -> str | None:
            latest = anyone.get("/api/v1/audit/checkpoints/latest").text
            return latest if int(latest.split("\n")[1]) > size else None

        newer = wait_until(grown, timeout_s=30, what="a later checkpoint")
        consistency = anyone.get(
            "/api/v1/audit/proofs/consistency",
            params={"from": size, "to": int(newer.split("\n")[1])},
        )
        assert consistency.status_code == 200, consistency.text
        new_checkpoint = tool.Checkpoint.verified(newer, [tool.VerifierKey.parse(log_vkey)])
        tool.verify_consistency(
            size,
            new_checkpoint.size,
            [base64.b64decode(h) for h in consistency.json()["hashes"]],
            checkpoint.root,
            new_checkpoint.root,
        )

        backwards = anyone.get("/api/v1/audit/proofs/consistency", params={"from": 9, "to": 3})
        assert backwards.status_code == 400
        assert backwards.headers["content-type"] == "application/problem+json"
        stranger = Note.parse(newer).with_signatures(
            cosign(Note.parse(newer).text, "stranger.example/w", Ed25519PrivateKey.generate(), 1)
        )
        refused = anyone.post(
            "/api/v1/audit/checkpoints/cosignatures",
            content=str(stranger).encode(),
            headers={"content-type": "text/plain; charset=utf-8"},
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "body"
        missing = anyone.get("/api/v1/audit/proofs/inclusion/999999999")
        assert missing.status_code == 404
        anyone.close()
