"""How domain events meet the Avro contract: which schema and topic each event type uses.

A record is built from the schema: every schema field is read from the event attribute of
the same name, except the envelope fields that the eventsourcing library names otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import attrgetter
from typing import Any
from uuid import UUID

import schemas
from domain.base import CaseAggregate
from domain.eligibility import EligibilityDecision, RuleSet
from domain.housing import AllocationRound, LotteryCommitment, Settlement
from domain.registry import Household, Person
from domain.reintegration import Reintegration
from domain.relocation import Convoy, Relocation
from domain.surveys import Questionnaire, SurveyResponse

CASES_TOPIC = "cases"  # every event that belongs to a household, keyed by household id
REFERENCE_TOPIC = "reference-data"  # questionnaires (later rule sets, settlements), keyed by id

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest event the log records, as stored (its JSON). A command whose event would be
larger is refused before anything is stored. The largest legitimate event is the announcement
of a lottery round for a settlement of 20,000 households (Lachin or Shusha scale): 6.4 MB with
5,000 units. Its Avro message is smaller than its JSON (2.2 MB: no field names)."""
MAX_MESSAGE_BYTES = 20 * 1024 * 1024
"""Kafka's limit for one message on every topic of the project (``max.message.bytes``),
the relay's producer (``message.max.bytes``) and the broker: above the largest event's Avro
message with its key and headers, so that no legitimate event is refused by Kafka."""
CONSUMER_FETCH_MAX_BYTES = 50 * 1024 * 1024
"""What a consumer of the project's topics must be able to fetch at once (``fetch.max.bytes``;
``receive.message.max.bytes`` at least this plus 512)."""

EVENT_SCHEMAS: dict[type[CaseAggregate.Event], str] = {
    Person.Registered: "reintegration.registry.PersonRegistered",
    Person.DetailCorrected: "reintegration.registry.PersonDetailCorrected",
    Person.IdpStatusGranted: "reintegration.registry.IdpStatusGranted",
    Person.IdpStatusEnded: "reintegration.registry.IdpStatusEnded",
    Person.DeathRecorded: "reintegration.registry.PersonDeathRecorded",
    Person.MovedToHousehold: "reintegration.registry.PersonMovedToHousehold",
    Person.StatusReferenceIssued: "reintegration.registry.IdpStatusReferenceIssued",
    Household.Registered: "reintegration.registry.HouseholdRegistered",
    Household.MemberAdded: "reintegration.registry.HouseholdMemberAdded",
    Household.MemberRemoved: "reintegration.registry.HouseholdMemberRemoved",
    Household.HeadChanged: "reintegration.registry.HouseholdHeadChanged",
    Household.MembersSplitOff: "reintegration.registry.HouseholdMembersSplitOff",
    Household.HousingConditionRecorded: "reintegration.registry.HousingConditionRecorded",
    Household.VulnerabilityRecorded: "reintegration.registry.VulnerabilityRecorded",
    Household.VulnerabilityCleared: "reintegration.registry.VulnerabilityCleared",
    Household.CircumstancesVerified: "reintegration.registry.HouseholdCircumstancesVerified",
    Questionnaire.Published: "reintegration.surveys.QuestionnairePublished",
    SurveyResponse.Started: "reintegration.surveys.SurveyStarted",
    SurveyResponse.QuestionAnswered: "reintegration.surveys.SurveyQuestionAnswered",
    SurveyResponse.AnswerCorrected: "reintegration.surveys.SurveyAnswerCorrected",
    SurveyResponse.Completed: "reintegration.surveys.SurveyCompleted",
    RuleSet.Drafted: "reintegration.eligibility.RuleSetDrafted",
    RuleSet.DraftRevised: "reintegration.eligibility.RuleSetDraftRevised",
    RuleSet.Approved: "reintegration.eligibility.RuleSetApproved",
    RuleSet.Superseded: "reintegration.eligibility.RuleSetSuperseded",
    EligibilityDecision.Determined: "reintegration.eligibility.EligibilityDetermined",
    EligibilityDecision.Overridden: "reintegration.eligibility.DecisionOverridden",
    EligibilityDecision.AppealLodged: "reintegration.eligibility.AppealLodged",
    EligibilityDecision.AppealDecided: "reintegration.eligibility.AppealDecided",
    Settlement.Registered: "reintegration.housing.SettlementRegistered",
    Settlement.SecurityClearanceCertified: "reintegration.housing.SecurityClearanceCertified",
    Settlement.InfrastructureReadinessCertified: "reintegration.housing.InfrastructureReadinessCertified",
    Settlement.OpenedForReturn: "reintegration.housing.SettlementOpenedForReturn",
    Settlement.HousingUnitRegistered: "reintegration.housing.HousingUnitRegistered",
    AllocationRound.Announced: "reintegration.housing.LotteryAnnounced",
    AllocationRound.Drawn: "reintegration.housing.LotteryDrawn",
    AllocationRound.ContributionRevealed: "reintegration.housing.LotteryContributionRevealed",
    AllocationRound.Voided: "reintegration.housing.LotteryVoided",
    LotteryCommitment.Used: "reintegration.housing.LotteryCommitmentUsed",
    Convoy.Scheduled: "reintegration.relocation.ConvoyScheduled",
    Relocation.Opened: "reintegration.relocation.RelocationOpened",
    Relocation.HousingOffered: "reintegration.relocation.HousingOffered",
    Relocation.HousingOfferAccepted: "reintegration.relocation.HousingOfferAccepted",
    Relocation.HousingOfferDeclined: "reintegration.relocation.HousingOfferDeclined",
    Relocation.HousingOfferExpired: "reintegration.relocation.HousingOfferExpired",
    Relocation.ConsentToReturnGiven: "reintegration.relocation.ConsentToReturnGiven",
    Relocation.ConsentWithdrawn: "reintegration.relocation.ConsentWithdrawn",
    Relocation.RelocationScheduled: "reintegration.relocation.RelocationScheduled",
    Relocation.FamilyDeparted: "reintegration.relocation.FamilyDeparted",
    Relocation.FamilyArrived: "reintegration.relocation.FamilyArrived",
    Relocation.KeysHandedOver: "reintegration.relocation.KeysHandedOver",
    Relocation.ResidenceRegistered: "reintegration.relocation.ResidenceRegistered",
    Relocation.UtilityConnected: "reintegration.relocation.UtilityConnected",
    Relocation.RelocationCompleted: "reintegration.relocation.RelocationCompleted",
    Reintegration.Opened: "reintegration.reintegration.ReintegrationOpened",
    Reintegration.EmploymentNeedRecorded: "reintegration.reintegration.EmploymentNeedRecorded",
    Reintegration.EmploymentProvided: "reintegration.reintegration.EmploymentProvided",
    Reintegration.ServiceEnrolled: "reintegration.reintegration.ServiceEnrolled",
    Reintegration.BenefitChanged: "reintegration.reintegration.BenefitChanged",
    Reintegration.DurableSolutionAssessed: "reintegration.reintegration.DurableSolutionAssessed",
}
REFERENCE_EVENTS: set[type[CaseAggregate.Event]] = {
    Questionnaire.Published,
    RuleSet.Drafted,
    RuleSet.DraftRevised,
    RuleSet.Approved,
    RuleSet.Superseded,
    Settlement.Registered,
    Settlement.SecurityClearanceCertified,
    Settlement.InfrastructureReadinessCertified,
    Settlement.OpenedForReturn,
    Settlement.HousingUnitRegistered,
    AllocationRound.Announced,
    AllocationRound.Drawn,
    AllocationRound.ContributionRevealed,
    AllocationRound.Voided,
    LotteryCommitment.Used,
    Convoy.Scheduled,
}


def topic_suffix(event_class: type) -> str:
    return REFERENCE_TOPIC if event_class in REFERENCE_EVENTS else CASES_TOPIC


_ENVELOPE: dict[str, Callable[[Any], Any]] = {
    "occurred_at": lambda e: e.timestamp,
    "aggregate_id": lambda e: e.originator_id,
    "aggregate_version": lambda e: e.originator_version,
    "case_id": lambda e: e.case_id,
}


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def cases(self) -> str:
        return f"{self.prefix}.{CASES_TOPIC}"

    @property
    def relay_position(self) -> str:
        return f"{self.prefix}.relay-position"

    @property
    def reference_data(self) -> str:
        return f"{self.prefix}.{REFERENCE_TOPIC}"

    def for_event(self, event: CaseAggregate.Event) -> str:
        return f"{self.prefix}.{topic_suffix(type(event))}"

    @property
    def audit_checkpoints(self) -> str:
        return f"{self.prefix}.audit-checkpoints"

    @property
    def audit_cosignatures(self) -> str:
        return f"{self.prefix}.audit-cosignatures"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def event_topics(self) -> list[str]:
        return [self.cases, self.reference_data]


class UnmappedEvent(Exception):
    pass


def schema_name_for(event: object) -> str:
    try:
        return EVENT_SCHEMAS[type(event)]  # type: ignore[index]
    except KeyError:
        raise UnmappedEvent(
            f"{type(event).__qualname__} has no Avro schema in EVENT_SCHEMAS"
        ) from None


def to_record(event: Any) -> tuple[str, dict[str, Any]]:
    """The schema name and the Avro record for a domain event (its uuids as their text)."""
    name = schema_name_for(event)
    return name, {key: read(event) for key, read in _readers(name)}


@cache
def _readers(schema_name: str) -> list[tuple[str, Callable[[Any], Any]]]:
    """For each field of the schema, how to read it from the event (computed once per schema):
    a uuid as its text, a structure as plain values, anything else as it is."""
    readers = []
    for field in schemas.catalogue()[schema_name].definition["fields"]:
        key, kind = field["name"], field["type"]
        read = _ENVELOPE.get(key) or attrgetter(key)
        if _is_uuid(kind):
            readers.append((key, _as_text(read)))
        elif _is_scalar(kind):
            readers.append((key, read))
        else:
            readers.append((key, _as_plain(read)))
    return readers


def _as_text(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def text(event: Any) -> Any:
        value = read(event)
        return str(value) if type(value) is UUID else value  # None, or already its text

    return text


def _as_plain(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda event: _plain(read(event))


def _is_uuid(kind: Any) -> bool:
    """A uuid, or a uuid or null."""
    if isinstance(kind, list):
        return all(k == "null" or _is_uuid(k) for k in kind) and "null" in kind
    return isinstance(kind, dict) and kind.get("logicalType") == "uuid"


def _is_scalar(kind: Any) -> bool:
    """A primitive or logical type (or a union of them): its value needs no conversion."""
    if isinstance(kind, list):
        return all(_is_scalar(k) for k in kind)
    if isinstance(kind, dict):
        return kind.get("type") in schemas.PRIMITIVES
    return kind in schemas.PRIMITIVES


def encode(event: Any) -> tuple[str, bytes]:
    name, record = to_record(event)
    return name, schemas.encode(name, record)


def headers(schema_name: str, event: Any, notification_id: int) -> dict[str, str]:
    """The headers every event message carries."""
    return {
        "event-type": schema_name,
        "event-id": str(event.event_id),  # free when it is text already, as in the relay
        "notification-id": str(notification_id),
        "correlation-id": event.correlation_id,
    }


_SCALARS = frozenset({str, int, float, bool, type(None), UUID, datetime, date, bytes})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:  # most fields: nothing to convert
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
