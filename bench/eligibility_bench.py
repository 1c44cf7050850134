"""Eligibility at the registry's size: determination of one settlement, a full reassessment
under a new rule set version, and the auditor's re-run, each beside its ceiling.

    python -m bench.eligibility_bench --size quick   # 10,000 households, 2,000 in the settlement
    python -m bench.eligibility_bench --size full    # 175,000 households, 20,000 in the settlement

The registry is generated reproducibly from --seed and written straight through the domain
(households, persons, IDP status, housing condition, a verification and a completed
pre-return survey for each), in transactions of a few hundred events. The settlement measured
is Aghali (ZAN-002). The ceiling is the rule engine alone on the same facts, already built:
what is left is loading the facts from the event store and saving the decisions.
With --workers N the settlement and the reassessment are decided by N processes
(infra/eligibility_workers.py), each a chunk of 1,000 households at a time.
Uses DATABASE_URL when set, else a fresh embedded PostgreSQL under .data/bench.
Writes bench/results/eligibility-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import secrets
import string
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from application.demo import random_profile
from application.shipped import shipped_rule_set
from domain import surveys
from domain.base import Actor, CommandContext, acting_as
from domain.geography import settlements
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold

if TYPE_CHECKING:
    from infra.bootstrap import Container

SIZES = {"quick": (10_000, 2_000), "full": (175_000, 20_000)}
SETTLEMENT = "ZAN-002"
ROOT = Path(__file__).resolve().parent.parent
OPERATOR = CommandContext(Actor("bench", "operator"), "bench", "bench")
SUPERVISOR = CommandContext(Actor("bench-supervisor", "supervisor"), "bench", "bench")


def generate(container: Container, households: int, in_settlement: int, seed: int) -> list[UUID]:
    """Documented households, saved a few at a time (one transaction stays under 300 events)."""
    from domain.surveys import shipped_pre_return_questionnaire

    app = container.store
    rng = random.Random(seed)
    others = [c for c in settlements() if c != SETTLEMENT]
    alphabet = string.ascii_uppercase + string.digits
    used: set[str] = set()
    today = date.today()
    ids: list[UUID] = []
    pending: list[Any] = []
    events = 0
    with acting_as(SUPERVISOR):
        questionnaire = container.services.surveys.publish_questionnaire(
            shipped_pre_return_questionnaire()
        )
    with acting_as(OPERATOR):
        for h in range(households):
            size = rng.choices([1, 2, 3, 4, 5, 6, 7, 8], weights=[8, 14, 20, 24, 18, 9, 5, 2])[0]
            members = []
            for i in range(size):
                fin = "".join(rng.choice(alphabet) for _ in range(7))
                while fin in used:
                    fin = "".join(rng.choice(alphabet) for _ in range(7))
                used.add(fin)
                members.append(
                    NewMember(
                        fin=fin,
                        first_name="Ad",
                        last_name="Soyad",
                        patronymic=None,
                        birth_date=date(1945 + rng.randrange(75), 1 + rng.randrange(12), 1),
                        sex=rng.choice(["female", "male"]),
                        relationship="head" if i == 0 else "child",
                    )
                )
            origin = SETTLEMENT if h < in_settlement else rng.choice(others)
            household, persons = register_household(
                RegisterHousehold(members, origin, f"Bakı, yataqxana {h % 500}"), today
            )
            profile = random_profile(rng)
            for person in persons:
                person.grant_idp_status("Law 669-IQ", date(1994, 5, 1), None, today)
            household.record_housing_condition(profile["housing_condition"], None)
            for vulnerability in profile["vulnerabilities"]:
                household.record_vulnerability(vulnerability, None, None)
            if profile["living_at_registered_address"] is not None:
                household.verify_circumstances(
                    profile["living_at_registered_address"],
                    profile["private_housing_after_displacement"],
                    profile["sham_marriage_or_divorce"],
                    today,
                    f"act {h}",
                    None,
                    today,
                )
            batch = [household, *persons]
            if profile["intention"] is not None:
                response = surveys.SurveyResponse.start(household.id, questionnaire, 1)
                answers: list[tuple[str, Any]] = [("intention", profile["intention"])]
                if profile["intention"] in ("undecided", "no"):
                    answers.append(("reasons_not_to_return", ["security"]))
                answers += [
                    ("obstacles", ["none"]),
                    ("employment_needed", "no"),
                    ("health_needs", "no"),
                    ("school_children", 0),
                ]
                for question, value in answers:
                    response.answer(questionnaire, question, value)
                response.complete(questionnaire)
                batch.append(response)
            pending += batch
            events += sum(len(a.pending_events) for a in batch)
            ids.append(household.id)
            if events >= 250:
                app.save(*pending)
                pending, events = [], 0
        if pending:
            app.save(*pending)
    return ids


class Phases:
    """Wall time spent in each phase of a batch determination (this process only): loading
    the facts from the event store, deciding (the engine and building the decision), saving.
    Wraps the service's own methods on this instance; what is left is the batch's loop."""

    NAMES = {"_load": "load", "_decide": "decide", "_save_decisions": "save"}

    def __init__(self, service: Any) -> None:
        self.seconds = dict.fromkeys(self.NAMES.values(), 0.0)
        for method, phase in self.NAMES.items():
            setattr(service, method, self._timed(getattr(service, method), phase))

    def _timed(self, method: Any, phase: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started

        return timed

    def taken(self) -> dict[str, float]:
        """The seconds of each phase since the last call."""
        taken = {phase: round(s, 2) for phase, s in self.seconds.items()}
        self.seconds = dict.fromkeys(self.seconds, 0.0)
        return taken


def stored_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT max(notification_id) FROM reintegration_events").fetchone()
    return int(row[0] or 0) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes deciding the settlement and the reassessment (1: this process alone, "
        "as the figures before 2026-12-01)",
    )
    args = parser.parse_args()
    households, in_settlement = SIZES[args.size]

    from infra.bootstrap import Container
    from infra.config import Settings

    server = os.environ.get("DATABASE_URL")
    if not server:
        from infra.postgres import start_embedded

        server = start_embedded(ROOT / ".data" / "bench" / "postgres")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(server)
    params["dbname"] = name
    database_url = psycopg.conninfo.make_conninfo("", **params)
    container = Container(Settings(database_url=database_url, data_dir=ROOT / ".data" / "bench"))
    figures: dict[str, Any] = {}
    try:
        container.projections.prepare()
        started = time.perf_counter()
        ids = generate(container, households, in_settlement, args.seed)
        generated_s = time.perf_counter() - started
        print(f"generated {len(ids)} households in {generated_s:.0f} s", flush=True)
        # As after any bulk load: fresh planner statistics. Without them the planner takes the
        # freshly filled events table for a few distinct aggregates and plans each lookup of one
        # aggregate as a parallel scan, ten times slower (measured: 45 vs 470 lookups/s).
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        service = container.services.eligibility
        phases = Phases(service)

        def determine_many(household_ids: list[UUID], **options: Any) -> Any:
            if args.workers <= 1:
                return service.determine_many(household_ids, **options)
            from infra.eligibility_workers import determine_in_workers

            return determine_in_workers(container.settings, household_ids, args.workers, **options)

        with acting_as(OPERATOR):
            service.draft(shipped_rule_set())
        with acting_as(SUPERVISOR):
            service.approve("great-return-housing", 1, "bench", date(2025, 1, 1))

        # 1. One settlement.
        settlement_ids = ids[:in_settlement]
        with acting_as(OPERATOR):
            started = time.perf_counter()
            first = determine_many(settlement_ids)
            settlement_s = time.perf_counter() - started
        settlement_phases = phases.taken()
        print(f"settlement: {first.as_dict()} in {settlement_s:.1f} s", flush=True)

        # Ceiling: the engine alone on the same facts, built beforehand.
        engine = service.engine(service.in_force())
        sample = settlement_ids[: min(2_000, len(settlement_ids))]
        facts = [service.facts(h) for h in sample]
        started = time.perf_counter()
        for f in facts:
            engine.determine(f)
        engine_rate = len(facts) / (time.perf_counter() - started)
        started = time.perf_counter()
        for h in sample:
            service.facts(h)
        facts_rate = len(sample) / (time.perf_counter() - started)

        # 2. Everyone under v1, then a full reassessment under v2.
        with acting_as(OPERATOR):
            rest = service.determine_many(ids[in_settlement:])
        v2 = shipped_rule_set()
        v2["version"] = 2
        v2["title_en"] += " (version 2)"
        with acting_as(OPERATOR):
            service.draft(v2)
        with acting_as(SUPERVISOR):
            service.approve("great-return-housing", 2, "bench", date.today() - timedelta(days=1))
        phases.taken()  # not the determination of the rest
        with acting_as(OPERATOR):
            started = time.perf_counter()
            reassessed = determine_many(ids, reason="reassessment", reassess=True)
            reassess_s = time.perf_counter() - started
        reassessment_phases = phases.taken()
        print(f"reassessment: {reassessed.as_dict()} in {reassess_s:.1f} s", flush=True)

        # 3. The auditor's re-run of recorded decisions.
        from domain.eligibility import decision_id

        to_rerun = [decision_id(h, 2) for h in ids[: min(5_000, len(ids))]]
        started = time.perf_counter()
        matches = sum(1 for r in container.services.audit.rerun_decisions(to_rerun) if r.matches)
        rerun_s = time.perf_counter() - started

        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        figures = {
            "benchmark": "eligibility",
            "size": args.size,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "households": households,
            "workers": args.workers,
            "events_in_store": stored_events(database_url),
            "generate_seconds": round(generated_s, 1),
            "settlement": {
                "code": SETTLEMENT,
                "households": in_settlement,
                "results": first.results,
                "seconds": round(settlement_s, 1),
                "households_per_second": round(in_settlement / settlement_s),
                "seconds_by_phase": settlement_phases if args.workers <= 1 else None,
            },
            "initial_determination_of_the_rest": rest.results,
            "reassessment": {
                "households": households,
                "decided": reassessed.decided,
                "failed": len(reassessed.failed),
                "seconds": round(reassess_s, 1),
                "households_per_second": round(households / reassess_s),
                "seconds_by_phase": reassessment_phases if args.workers <= 1 else None,
            },
            "rerun": {
                "decisions": len(to_rerun),
                "matches": matches,
                "decisions_per_second": round(len(to_rerun) / rerun_s),
            },
            "ceiling": "the rule engine alone on facts built beforehand (no I/O)",
            "ceiling_determinations_per_second": round(engine_rate),
            "facts_one_household_at_a_time_per_second": round(facts_rate),
            "ratio_to_ceiling": {
                "settlement": round((in_settlement / settlement_s) / engine_rate, 4),
                "reassessment": round((households / reassess_s) / engine_rate, 4),
            },
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        container.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    out = ROOT / "bench" / "results" / f"eligibility-{args.size}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
