"""District scopes: a caller limited to districts reads and changes only the cases that
originate there (a household's origin settlement, and so its district).

- A path naming a case (household, person by FIN, decision, survey response, convoy, status
  reference, settlement) outside the caller's districts answers 404, as an unknown case does,
  so that its existence does not leak. The case's district is read from the write model, so a
  case registered a moment ago is already in scope.
- A command whose body names a settlement (or households) outside the caller's districts is
  refused with 403: there is nothing to hide, the caller named it.
- Lists and statistics are filtered in SQL by the read-model queries (their ``districts``
  argument), never after the fact.

A national caller (no districts) passes every check without a lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from application.services import Services
from domain.base import Actor, DomainError
from domain.geography import settlement

UNKNOWN = "?"
"""The district of a case that cannot be found: in no one's scope (the route answers 404)."""


def district_of_settlement(code: str | None) -> str | None:
    found = settlement(code) if code else None
    return found.district_code if found else None


def _household(services: Services, household_id: UUID) -> str:
    household = services.registry.get_household(household_id)
    return district_of_settlement(household.origin_settlement_code) or UNKNOWN


def _lookup(services: Services, what: Callable[[], str]) -> str:
    try:
        return what()
    except DomainError:
        return UNKNOWN


def districts_in_path(
    services: Services, params: dict[str, Any], query: Callable[..., Any]
) -> list[str]:
    """The districts of the cases a path names (one per case-naming parameter)."""
    found: list[str] = []
    if "household_id" in params:
        found.append(_lookup(services, lambda: _household(services, UUID(params["household_id"]))))
    if "fin" in params:
        fin = str(params["fin"]).strip().upper()
        found.append(
            _lookup(
                services,
                lambda: _household(services, services.registry.get_person(fin).household_id),
            )
        )
    if "decision_id" in params:
        found.append(
            _lookup(
                services,
                lambda: _household(
                    services,
                    services.eligibility.get_decision(UUID(params["decision_id"])).household_id,
                ),
            )
        )
    if "response_id" in params:
        found.append(
            _lookup(
                services,
                lambda: _household(
                    services,
                    services.surveys.get_response(UUID(params["response_id"])).household_id,
                ),
            )
        )
    if "convoy_id" in params:
        found.append(
            _lookup(
                services,
                lambda: (
                    district_of_settlement(
                        services.relocation.convoy(UUID(params["convoy_id"])).settlement_code
                    )
                    or UNKNOWN
                ),
            )
        )
    if "verification_code" in params:
        from projections.queries.households import get_status_reference

        reference = query(get_status_reference, params["verification_code"])
        found.append(
            _lookup(services, lambda: _household(services, reference["household_id"]))
            if reference
            else UNKNOWN
        )
    if "code" in params and settlement(str(params["code"])) is not None:
        found.append(district_of_settlement(str(params["code"])) or UNKNOWN)
    return found


def districts_in_body(services: Services, body: Any) -> list[str]:
    """The districts a command's JSON body names: settlement codes and households."""
    found: list[str] = []
    if not isinstance(body, dict):
        return found
    for key in ("origin_settlement_code", "settlement_code"):
        if isinstance(body.get(key), str):
            found.append(district_of_settlement(body[key]) or UNKNOWN)
    if isinstance(body.get("code"), str) and settlement(body["code"]) is not None:
        found.append(district_of_settlement(body["code"]) or UNKNOWN)
    households = body.get("household_ids")
    if isinstance(households, list):
        for item in households:
            try:
                household_id = UUID(str(item))
            except ValueError:
                continue  # the request model refuses it
            found.append(_household_or_unknown(services, household_id))
    return found


def _household_or_unknown(services: Services, household_id: UUID) -> str:
    return _lookup(services, lambda: _household(services, household_id))


def covers_all(actor: Actor, districts: list[str]) -> bool:
    return all(actor.covers(d) for d in districts)


def query_districts(actor: Actor) -> list[str] | None:
    """What a list or statistics query filters by: the caller's districts, or None (all)."""
    return list(actor.districts) if actor.districts else None
