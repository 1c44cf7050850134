"""The command line in production acts with an identity checked as the API checks it: a token
(static and minted here), never a self-asserted name; reads of personal data are recorded in
the access log with the purpose given."""

from __future__ import annotations

import json
import os
import subprocess

from infra import access_log
from infra.identity import mint
from tests.integration.conftest import Stack, register_households
from tests.support import ROOT


def run(stack: Stack, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REINTEGRATION_TOKEN", "REINTEGRATION_PURPOSE", "API_TOKENS")
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args],
        env={
            **base,
            "REINTEGRATION_ENV": "production",
            "DATABASE_URL": stack.settings.database_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "USER": "mallory",
            **env,
        },
        capture_output=True,
        text=True,
    )


def test_production_commands_act_as_the_token_holder_and_refuse_self_asserted_names(
    stack: Stack,
) -> None:
    register_households(stack.container, 1)
    first = stack.container.application.recorder.select_notifications(2, 1)[0]
    fin = stack.container.application.mapper.to_domain_event(first).fin
    operator, operator_entry = mint("nigar", "operator")
    auditor, auditor_entry = mint("kamran", "auditor")
    district, district_entry = mint("zaur", "operator", ("ZAN",))
    hashes = {"API_TOKEN_HASHES": ",".join((operator_entry, auditor_entry, district_entry))}
    grant = ("persons", "grant-status", fin, "--basis", "Law 669-IQ", "--effective", "2021-05-01")

    unnamed = run(stack, hashes, *grant, "--by", "mallory")
    assert unnamed.returncode == 1
    assert unnamed.stderr.strip().startswith("error: this command needs an identity")
    forged = run(stack, {**hashes, "REINTEGRATION_TOKEN": operator + "x"}, *grant)
    assert forged.returncode == 1 and "token is not valid" in forged.stderr
    wrong_role = run(stack, {**hashes, "REINTEGRATION_TOKEN": auditor}, *grant)
    assert wrong_role.returncode == 1 and "role 'auditor' may not do this" in wrong_role.stderr
    scoped = run(stack, {**hashes, "REINTEGRATION_TOKEN": district}, *grant)
    assert scoped.returncode == 1 and "district-scoped" in scoped.stderr

    granted = run(stack, hashes, "--token", operator, *grant, "--by", "mallory")
    assert granted.returncode == 0, granted.stderr
    person = stack.container.services.registry.get_person(fin)
    history = stack.container.services.audit.history(person.household_id)["events"]
    assert history[-1]["actor_id"] == "nigar"

    no_purpose = run(stack, {**hashes, "REINTEGRATION_TOKEN": auditor}, "persons", "show", fin)
    assert no_purpose.returncode == 1 and "needs a purpose" in no_purpose.stderr
    shown = run(
        stack,
        {**hashes, "REINTEGRATION_TOKEN": auditor},
        "--purpose",
        "appeal 17 review",
        "persons",
        "show",
        fin,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["fin"] == fin
    (row,) = access_log.query(stack.container.read_pool, actor_id="kamran")
    assert row["resource"] == "cli:persons show" and row["reason"] == "appeal 17 review"
    assert set(row["subject_ids"]) == {person.id, person.household_id}
    assert row["actor_role"] == "auditor"
    assert fin not in json.dumps(row, default=str)

    searched = run(
        stack,
        {**hashes, "REINTEGRATION_TOKEN": operator},
        "persons",
        "search",
        "--name-prefix",
        person.last_name[:3],
    )
    assert searched.returncode == 0, searched.stderr
    (search,) = access_log.query(stack.container.read_pool, actor_id="nigar")
    assert search["search_terms"] == {"name_prefix": person.last_name[:3]}
    assert person.id in search["subject_ids"]

    report = run(
        stack, {**hashes, "REINTEGRATION_TOKEN": operator}, "persons", "access-report", fin
    )
    assert report.returncode == 0, report.stderr
    entries = json.loads(report.stdout)["entries"]
    assert ("kamran", "auditor", "appeal 17 review") in {
        (e["actor_id"], e["actor_role"], e["purpose"]) for e in entries
    }
    assert all("search_terms" not in e for e in entries)
