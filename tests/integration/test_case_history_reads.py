"""The case history on PostgreSQL: read in two queries as a rule, it holds exactly what the
previous reading (one query per kind of aggregate) held, links of the hash chain included."""

from __future__ import annotations

import copy
from datetime import date, timedelta

from application.demo import document_household
from application.shipped import shipped_rule_set
from domain.base import acting_as
from infra.bootstrap import Container
from tests.integration.test_eligibility import OPERATOR, SUPERVISOR, approved_v1, register
from tests.unit.application.test_case_history_reads import PreviousAudit


def test_every_case_history_equals_the_previous_reading_links_included(
    container: Container,
) -> None:
    approved_v1(container)
    households = [register(container, size=n) for n in (1, 3, 5)]
    with acting_as(OPERATOR):
        for household_id in households[:2]:
            document_household(container.services, household_id)
        container.services.eligibility.determine_many(households)
    v2 = copy.deepcopy(shipped_rule_set())
    v2["version"] = 2
    with acting_as(OPERATOR):
        container.services.eligibility.draft(v2)
    with acting_as(SUPERVISOR):
        container.services.eligibility.approve(
            "great-return-housing", 2, "Committee decision No. 20", date.today() - timedelta(days=1)
        )
    with acting_as(OPERATOR):
        container.services.eligibility.determine_many(households, reassess=True)

    audit = container.services.audit
    previous = PreviousAudit(audit.store, audit.language, audit.event_type)
    for household_id in households:
        history = audit.history(household_id)
        assert history == previous.history(household_id)
        assert all(e["chain_hash"] for e in history["events"])
    decisions = [
        e for e in audit.history(households[0])["events"] if e["aggregate"] == "EligibilityDecision"
    ]
    assert len(decisions) == 2
