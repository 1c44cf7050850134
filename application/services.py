"""Every use case of the system over one event store: what the composition root builds for the
service, and what the fast tests build in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.audit import Audit
from application.eligibility import Eligibility
from application.housing import Housing
from application.ports import EventStore, ExpressionLanguage, ParticipantKeys
from application.registry import Registry
from application.reintegration import FollowUps
from application.relocation import Relocations
from application.surveys import Surveys


@dataclass(frozen=True)
class Services:
    store: EventStore
    registry: Registry
    surveys: Surveys
    eligibility: Eligibility
    housing: Housing
    relocation: Relocations
    reintegration: FollowUps
    audit: Audit


def build(
    store: EventStore,
    language: ExpressionLanguage,
    default_rule_set: str,
    event_type: Callable[[Any], str] = lambda event: type(event).__qualname__,
    participant_keys: ParticipantKeys | None = None,
) -> Services:
    """``event_type`` names an event in a case's history (the contract names it after its
    Avro schema)."""
    return Services(
        store=store,
        registry=Registry(store),
        surveys=Surveys(store),
        eligibility=Eligibility(store, language, default_rule_set),
        housing=Housing(store, default_rule_set, participant_keys),
        relocation=Relocations(store),
        reintegration=FollowUps(store),
        audit=Audit(store, language, event_type, participant_keys),
    )
