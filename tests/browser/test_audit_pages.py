"""The audit pages in a browser: an auditor sees the chain verified, proves an event is in
the log, cross-checks a read model and finds their own reads in the read log; a supervisor
replays a dead letter made for real (a message the households projection could not apply);
an operator may not open the audit pages."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from confluent_kafka import Producer
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import Browser, Console
from tests.integration.test_dead_letters import person_registered
from tests.support import random_fin, wait_until

PURPOSE = "complaint 2026/41: the family asks who saw its file"


def a_checkpoint(console: Console) -> dict[str, Any]:
    """The newest signed checkpoint (the service signs one a minute after its first events)."""
    with console.api("auditor") as api:

        def newest() -> dict[str, Any] | None:
            found = api.get("/api/v1/audit/checkpoints").json()["checkpoints"]
            return found[-1] if found else None

        return wait_until(newest, timeout_s=120, interval_s=1, what="a signed checkpoint")


def test_an_auditor_checks_the_chain_a_proof_a_read_model_and_their_own_reads(
    console: Console, browser: Browser
) -> None:
    checkpoint = a_checkpoint(console)
    with console.api("auditor") as api:
        (household, *_) = api.get("/api/v1/households", params={"limit": 1}).json()["items"]
        case = household["household_id"]
        read = api.get(f"/api/v1/households/{case}", headers={"X-Access-Reason": PURPOSE})
        assert read.status_code == 200, read.text
    browser.sign_in("auditor")

    browser.open("/console/audit")
    assert browser.heading == "Audit"
    browser.check("audit overview")
    browser.find(By.CSS_SELECTOR, "a[href='/console/audit/verification']").click()
    browser.wait_for(By.CSS_SELECTOR, "form.run")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "main .verdict") == []  # not run yet
    browser.check("chain verification, not run yet")
    browser.find(By.CSS_SELECTOR, "form.run button[type=submit]").click()
    verdict = browser.find(By.CSS_SELECTOR, "main .verdict")
    assert "Təsdiqləndi" in verdict.text  # verified, in words
    assert "status-ok" in (verdict.get_attribute("class") or "")
    browser.check("chain verified")

    browser.open("/console/audit/checkpoints")
    browser.check("checkpoints")
    browser.find(By.ID, "position").send_keys(str(checkpoint["position"]))
    browser.find(By.CSS_SELECTOR, "main form button[type=submit]").click()
    browser.wait_for_text(By.CSS_SELECTOR, "#proof .verdict", "Sübut edildi")
    assert f"Mövqe {checkpoint['position']}" in browser.find(By.CSS_SELECTOR, "#proof h2").text
    browser.check("inclusion proof verified")
    browser.find(By.ID, "position").clear()
    browser.find(By.ID, "position").send_keys("not a number")
    browser.find(By.CSS_SELECTOR, "main form button[type=submit]").click()  # htmx swaps the result
    problem = browser.wait_for(By.ID, "position-problem")
    assert "tam ədəd" in problem.text
    browser.check("inclusion proof of a position that is not a number")

    browser.open("/console/audit/projections")
    browser.check("projections cross-check form")
    Select(browser.find(By.ID, "projection")).select_by_value("households")
    browser.find(By.CSS_SELECTOR, "main form button[type=submit]").click()
    browser.wait_for_text(By.CSS_SELECTOR, "#cross-check .verdict", "Eynidir", timeout=120)
    assert "status-ok" in (
        browser.find(By.CSS_SELECTOR, "#cross-check .verdict").get_attribute("class") or ""
    )
    browser.check("projections cross-check of the households")

    browser.open("/console/audit/access-log")
    browser.find(By.XPATH, "//a[contains(., 'Yalnız öz oxunuşlarım')]").click()
    browser.wait_for(By.CSS_SELECTOR, "table.reads")
    rows = [r.text for r in browser.driver.find_elements(By.CSS_SELECTOR, "table.reads tbody tr")]
    mine = [r for r in rows if PURPOSE in r]
    assert mine and all("console-aud" in r for r in rows), rows
    assert any("/api/v1/households/{household_id}" in r for r in mine), mine  # the case read
    browser.check("the auditor's own reads in the read log")
    assert browser.console_errors() == []


def test_a_supervisor_replays_a_dead_letter_once_its_cause_is_fixed(
    console: Console, browser: Browser
) -> None:
    fin = random_fin()
    in_the_way = uuid.uuid4()
    with psycopg.connect(console.database_url) as conn:  # a stray row, as a bad migration leaves
        conn.execute(
            "INSERT INTO projection_households.rm_persons (person_id, fin, first_name, last_name, "
            "birth_date, sex, household_id, version) VALUES (%s, %s, 'Stray', 'Row', "
            "'1990-01-01', 'male', %s, 1)",
            (in_the_way, fin, uuid.uuid4()),
        )
    producer = Producer({"bootstrap.servers": console.service.env["KAFKA_BOOTSTRAP_SERVERS"]})
    producer.produce(
        f"{console.topic_prefix}.cases", key=b"poison", value=person_registered(fin, uuid.uuid4())
    )
    assert producer.flush(10) == 0
    with console.api("supervisor") as api:

        def dead_letter() -> dict[str, Any] | None:
            found = api.get("/api/v1/operations/dead-letters").json()["dead_letters"]
            return next((d for d in found if d["offset"] is not None), None)

        letter = wait_until(dead_letter, timeout_s=60, interval_s=0.5, what="the dead letter")
    key = f"{letter['projection']}-{letter['id']}"
    try:
        browser.sign_in("supervisor")
        browser.open("/console/audit")
        browser.find(By.CSS_SELECTOR, "a[href='/console/audit/dead-letters']").click()
        browser.wait_for(By.ID, f"reason-{key}")
        assert "UniqueViolation" in browser.find(By.CSS_SELECTOR, "ul.letters").text
        browser.check("a dead letter waiting for a replay")

        browser.find(By.ID, f"reason-{key}").send_keys("replayed before the fix")
        browser.find(By.XPATH, f"//form[.//input[@id='reason-{key}']]//button").click()
        browser.wait_for_text(By.CSS_SELECTOR, "#dead-letters .verdict", "Təkrar tətbiq edilmədi")
        browser.check("a replay that still fails")

        with psycopg.connect(console.database_url) as conn:  # the cause is fixed
            conn.execute(
                "DELETE FROM projection_households.rm_persons WHERE person_id = %s", (in_the_way,)
            )
        browser.find(By.ID, f"reason-{key}").send_keys("the stray row was removed")
        browser.find(By.XPATH, f"//form[.//input[@id='reason-{key}']]//button").click()
        browser.wait_for_text(By.CSS_SELECTOR, "#dead-letters .verdict", "mesaj tətbiq olundu")
        resolved = browser.find(By.XPATH, "//table[.//th[contains(., 'Ailələr və şəxslər · ')]]")
        assert "console-sup" in resolved.text and "the stray row was removed" in resolved.text
        browser.check("a dead letter replayed")
        assert browser.console_errors() == []
    finally:  # the message is not in the event log: the read model must not keep it
        with psycopg.connect(console.database_url) as conn:
            conn.execute("DELETE FROM projection_households.rm_persons WHERE fin = %s", (fin,))


def test_an_operator_may_not_open_the_audit_pages(browser: Browser) -> None:
    browser.sign_in("operator")

    browser.open("/console/audit")

    assert browser.heading == "Rolunuz bu səhifəni açmağa icazə vermir"
    browser.check("audit refused to an operator")
