"""Participants of a lottery draw for the tests: each with a fresh secret, its commitment and
its reveal."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.housing import Commitment, Contribution, seed_hash

PARTICIPANTS = ("Public Council", "Committee representative")


@dataclass(frozen=True)
class Draw:
    secrets: tuple[tuple[str, str], ...]

    @property
    def commitments(self) -> list[Commitment]:
        return [Commitment(name, seed_hash(secret)) for name, secret in self.secrets]

    @property
    def reveals(self) -> list[Contribution]:
        return [Contribution(name, secret) for name, secret in self.secrets]

    def announce_json(self) -> list[dict[str, Any]]:
        return [
            {"participant": c.participant, "commitment": c.commitment} for c in self.commitments
        ]

    def reveal_json(self) -> list[dict[str, Any]]:
        return [{"participant": n, "contribution": s} for n, s in self.secrets]


def fresh(*participants: str) -> Draw:
    """Participants (by default the Public Council and the committee's representative), each
    with a secret never used before."""
    return Draw(tuple((name, secrets.token_hex(32)) for name in participants or PARTICIPANTS))


def now() -> datetime:
    return datetime.now(UTC)


def reveal_all(housing: Any, code: str, number: int, draw: Draw) -> None:
    """Every participant reveals, through the housing use cases."""
    for c in draw.reveals:
        housing.reveal(code, number, c.participant, c.contribution)


def reveal_in(allocation_round: Any, draw: Draw) -> None:
    """Every participant reveals, on the aggregate itself."""
    for c in draw.reveals:
        allocation_round.reveal(c.participant, c.contribution, now())
