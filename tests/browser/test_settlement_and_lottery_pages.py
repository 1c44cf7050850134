from __future__ import annotations

import hashlib

from selenium.webdriver.common.by import By

from tests.browser.conftest import SCOPED_TOKEN, Browser, Console


def rows_of(browser: Browser, table: str) -> list[str]:
    """The row headers of a section's table, in the order shown."""
    return [
        cell.text
        for cell in browser.driver.find_elements(By.CSS_SELECTOR, f"{table} tbody th[scope=row]")
    ]


def test_an_operator_sees_a_settlements_units_pipeline_convoys_and_returnees(
    browser: Browser,
) -> None:
    browser.sign_in("operator")
    browser.open("/console/settlements")
    browser.find(By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002']")
    browser.check("settlements")

    browser.find(By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002']").click()

    browser.wait_for_text(By.CSS_SELECTOR, "main h1", "Ağalı")
    drawn = browser.wait_for(By.CSS_SELECTOR, "canvas[data-chart='units-chart'][data-drawn]")
    assert drawn.size["height"] > 0
    browser.wait_for(By.CSS_SELECTOR, "canvas[data-chart='pipeline-chart'][data-drawn]")
    units = rows_of(browser, "section[aria-labelledby=units]")
    assert units == ["Boş", "Təklif edilib", "Ayrılıb", "Tutulub"]
    stages = rows_of(browser, "section[aria-labelledby=pipeline]")
    assert stages[0] == "Açılıb, təklif gözləyir"
    assert stages.index("Açarlar təhvil verilib") < stages.index("Köçürülmə başa çatıb")
    assert stages[-1] == "Köçürülmə başa çatıb"
    manifests = browser.driver.find_elements(
        By.CSS_SELECTOR, "section[aria-labelledby=convoys] a[href^='/console/documents/convoys/']"
    )
    assert manifests, "each convoy links to its manifest"
    assert not browser.driver.find_elements(
        By.CSS_SELECTOR, "section[aria-labelledby=convoys] a[href^='/console/households/']"
    ), "the convoys are counted, their families are on the manifest"
    returnees = browser.find(By.CSS_SELECTOR, "section[aria-labelledby=returnees] table")
    assert "Sənədləşmə" in returnees.text  # an unmet IASC criterion, in words
    assert "documentation" not in returnees.text
    assert browser.driver.find_elements(
        By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002/rounds/1']"
    )
    assert browser.console_errors() == []
    browser.check("settlement Aghali")


def test_the_returnees_come_a_page_at_a_time_with_their_total(
    browser: Browser, console: Console
) -> None:
    where = {"settlement_code": "ZAN-002", "limit": 1, "total": "true"}
    api = console.api()
    held = int(api.get("/api/v1/reintegration/returnees", params=where).headers["x-total-count"])
    convoys = int(api.get("/api/v1/convoys", params=where).headers["x-total-count"])
    assert held > 1 and convoys > 1, "the demonstration has returnees and convoys to page"
    browser.sign_in("supervisor")
    browser.open("/console/settlements/ZAN-002?per_page=1#returnees")
    section = "section[aria-labelledby=returnees]"

    caption = browser.find(By.CSS_SELECTOR, f"{section} caption").text
    assert caption == f"{held} qayıdan ailə"  # the total, not the page's one
    first = rows_of(browser, section)
    assert len(first) == 1
    assert browser.find(By.CSS_SELECTOR, f"{section} nav.pager span").text == f"Səhifə 1 / {held}"
    assert len(rows_of(browser, "section[aria-labelledby=convoys]")) == 1
    browser.find(By.CSS_SELECTOR, "section[aria-labelledby=convoys] nav.pager")
    browser.check("settlement returnees page 1")

    browser.find(By.CSS_SELECTOR, f"{section} a[rel=next]").click()

    browser.wait_for_text(By.CSS_SELECTOR, f"{section} nav.pager span", f"Səhifə 2 / {held}")
    assert "returnees=2" in browser.driver.current_url
    second = rows_of(browser, section)
    assert second and not set(second) & set(first)
    assert len(rows_of(browser, "section[aria-labelledby=convoys]")) == 1  # its own page kept
    browser.find(By.CSS_SELECTOR, f"{section} a[rel=prev]")
    browser.check("settlement returnees page 2")


def test_an_auditor_reads_the_returnees_pages_with_the_purpose_given(browser: Browser) -> None:
    browser.sign_in("auditor")
    browser.open("/console/settlements/ZAN-002?per_page=1&reason=audit+of+the+returns")
    section = "section[aria-labelledby=returnees]"

    browser.find(By.CSS_SELECTOR, f"{section} a[rel=next]").click()

    browser.wait_for_text(By.CSS_SELECTOR, f"{section} nav.pager span", "Səhifə 2")
    assert "reason=audit+of+the+returns" in browser.driver.current_url  # the purpose kept
    assert rows_of(browser, section)
    browser.check("settlement returnees page 2 for an auditor")


def test_a_rounds_entrants_are_paged_and_an_entrant_is_found_by_its_lottery_id(
    browser: Browser, console: Console
) -> None:
    published = console.api().get("/api/v1/settlements/ZAN-002/rounds/1/result").json()
    entrants = [e["id"] for e in published["announcement"]["entrants"]]
    assigned = published["result"]["assignments"]
    browser.sign_in("supervisor")
    browser.open("/console/settlements/ZAN-002/rounds/1?per_page=10")
    section = "section[aria-labelledby=entrants]"

    caption = browser.find(By.CSS_SELECTOR, f"{section} #entrant-list caption").text
    assert caption == f"{len(entrants)} namizəd"
    assert rows_of(browser, f"{section} #entrant-list") == entrants[:10]
    assert len(rows_of(browser, "section[aria-labelledby=assignments]")) == min(10, len(assigned))
    browser.check("lottery round entrants page 1")
    browser.find(By.CSS_SELECTOR, f"{section} a[rel=next]").click()
    browser.wait_for_text(By.CSS_SELECTOR, f"{section} nav.pager span", "Səhifə 2")
    assert rows_of(browser, f"{section} #entrant-list") == entrants[10:20]
    browser.check("lottery round entrants page 2")

    wanted = entrants[-1]  # on the last page
    browser.find(By.ID, "lottery-id").send_keys(f" {wanted.upper()} ")
    browser.find(By.ID, "lottery-id-button").click()

    browser.wait_for(By.ID, "entrant-lookup")
    assert rows_of(browser, "#entrant-lookup") == [wanted]
    lot = hashlib.sha256(f"{published['result']['seed']}:{wanted}".encode()).hexdigest()
    assert lot[:12] in browser.find(By.ID, "entrant-lookup").text  # its line, with its lot
    browser.check("lottery round entrant found")
    browser.find(By.ID, "lottery-id").clear()
    browser.find(By.ID, "lottery-id").send_keys("no-such-entrant")
    browser.find(By.ID, "lottery-id-button").click()
    browser.wait_for_text(By.ID, "entrant-lookup", "no-such-entrant")
    assert not rows_of(browser, "#entrant-lookup")
    browser.check("lottery round entrant not found")


def test_an_auditor_checks_lottery_round_1_and_the_rerun_matches(browser: Browser) -> None:
    browser.sign_in("auditor")
    browser.open("/console/settlements/ZAN-002")
    browser.find(By.ID, "reason")  # convoys and returnees wait for the purpose of the read
    browser.check("settlement asks an auditor's purpose")
    browser.find(By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002/rounds/1']").click()

    browser.wait_for_text(By.CSS_SELECTOR, "main h1", "püşkatma turu 1")
    participants = rows_of(browser, "section[aria-labelledby=commitments]")
    assert len(participants) == 2
    assert browser.driver.find_elements(
        By.CSS_SELECTOR, "section[aria-labelledby=entrants] tbody tr"
    )
    assert browser.driver.find_elements(
        By.CSS_SELECTOR, "a[href='/console/documents/rounds/ZAN-002/1']"
    )
    browser.check("lottery round 1")

    browser.find(By.ID, "rerun-button").click()  # without a purpose the browser asks for it
    assert not browser.driver.find_elements(By.ID, "rerun-result")
    browser.find(By.ID, "rerun-reason").send_keys("annual audit of the Aghali lottery")
    browser.find(By.ID, "rerun-button").click()

    browser.wait_for_text(By.ID, "rerun-result", "üst-üstə düşür")
    assert "/rerun" not in browser.driver.current_url  # htmx replaced the section in place
    result = browser.find(By.ID, "rerun-result").text
    assert "sha256:" in result and "düşmür" not in result
    assert browser.console_errors() == []
    browser.check("lottery round 1 re-run")

    browser.open("/console/settlements/ZAN-002/rounds/1/rerun?reason=annual+audit")
    browser.wait_for_text(By.ID, "rerun-result", "üst-üstə düşür")  # also as a plain link
    browser.check("lottery round 1 re-run without script")


def test_the_settlement_page_reads_in_english(browser: Browser) -> None:
    browser.sign_in("supervisor")
    browser.open("/console/settlements/ZAN-002")
    browser.find(By.CSS_SELECTOR, "a[hreflang=en]").click()

    browser.wait_for_text(By.CSS_SELECTOR, "main h1", "Aghali")
    stages = rows_of(browser, "section[aria-labelledby=pipeline]")
    assert stages[0] == "Opened, waiting for an offer" and stages[-1] == "Relocation completed"
    assert "Zangilan district" in browser.find(By.CSS_SELECTOR, "p.lead").text
    assert "keys_handed_over" not in browser.find(By.ID, "main").text
    browser.wait_for(By.CSS_SELECTOR, "canvas[data-chart='units-chart'][data-drawn]")
    assert browser.console_errors() == []
    browser.check("settlement Aghali in English")


def test_an_operator_of_another_district_neither_lists_nor_opens_aghali(browser: Browser) -> None:
    browser.sign_in_with_token(SCOPED_TOKEN)
    browser.open("/console/settlements")
    browser.find(By.CSS_SELECTOR, "main h1")
    assert not browser.driver.find_elements(
        By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002']"
    )
    browser.check("settlements of Fuzuli")

    browser.open("/console/settlements/ZAN-002/rounds/1")

    assert browser.heading == "Tapılmadı"
    browser.check("round of another district not found")
