"""`reintegration import registry FILE`: batches, idempotence, and a report of rejected rows."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from domain.base import Actor
from domain.registry import person_id_for
from infra.legacy_import import LegacyImport
from tests.integration.conftest import Stack, register_households
from tests.support import ROOT

SAMPLE = ROOT / "infra" / "samples" / "legacy_registry.csv"


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": stack.settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": "",
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args], env=env, capture_output=True, text=True
    )


def test_the_sample_registry_imports_once_and_reports_its_rejected_rows(
    stack: Stack, tmp_path: Path
) -> None:
    file = tmp_path / "registry.csv"
    shutil.copy(SAMPLE, file)
    first = cli(stack, "import", "registry", str(file), "--batch", "2")
    assert first.returncode == 0, first.stderr
    assert "4 households (8 persons) registered" in first.stderr
    assert "2 rows rejected" in first.stderr
    with (tmp_path / "registry.csv.rejected.csv").open() as report:
        rejected = list(csv.DictReader(report))
    assert [(r["line"], r["household_ref"]) for r in rejected] == [("8", "H-0004"), ("9", "H-0005")]
    assert "unknown settlement code" in rejected[0]["reason"]
    assert "members[0].fin" in rejected[1]["reason"]

    app = stack.container.application
    head = app.get_person("3KQ7P1A")
    assert head.idp_status == "active" and head.idp_certificate_number == "IDP-0100001"
    household = app.get_household(head.household_id)
    assert household.housing_condition == "dormitory"
    assert household.vulnerabilities == [("war_participant", None)]
    assert app.get_household(app.get_person("5LM2Q8D").household_id).vulnerabilities == [
        ("single_parent", None),
        ("martyr_family", None),
    ]

    second = cli(stack, "import", "registry", str(file))
    assert second.returncode == 0, second.stderr
    assert (
        "0 households (0 persons) registered; 4 households were already registered" in second.stderr
    )
    with psycopg.connect(stack.settings.database_url or "") as conn:
        persons = conn.execute(
            "SELECT count(*) FROM reintegration_events WHERE topic LIKE '%%Person.Registered'"
        ).fetchone()
    assert persons == (8,)


def test_a_household_whose_member_is_registered_elsewhere_is_rejected_and_the_rest_imported(
    stack: Stack, tmp_path: Path
) -> None:
    register_households(stack.container, 1)
    existing = stack.container.application.recorder.select_notifications(2, 1)[0]
    fin = stack.container.application.mapper.to_domain_event(existing).fin
    rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    rows[2] = rows[2].replace("3KQ7P1B", fin)  # the spouse of H-0001 is someone already registered
    file = tmp_path / "conflict.csv"
    file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = LegacyImport(stack.container.application, Actor("t", "operator"), 10).run(file)
    assert result.households_registered == 3
    reasons = {(r.household_ref, r.reason) for r in result.rejected}
    assert ("H-0001", f"FIN {fin} is already registered in another household") in reasons
    assert not stack.container.application.recorder.select_events(person_id_for("3KQ7P1A"))


def test_a_file_without_the_registry_columns_is_refused_in_one_line(
    stack: Stack, tmp_path: Path
) -> None:
    file = tmp_path / "wrong.csv"
    file.write_text("name,age\nA,1\n", encoding="utf-8")
    result = cli(stack, "import", "registry", str(file))
    assert result.returncode != 0
    assert "missing columns: household_ref" in result.stderr
    missing = cli(stack, "import", "registry", str(tmp_path / "nope.csv"))
    assert missing.returncode != 0 and "no such file" in missing.stderr
