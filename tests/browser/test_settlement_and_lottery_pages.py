from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.conftest import SCOPED_TOKEN, Browser


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
    convoys = browser.driver.find_elements(
        By.CSS_SELECTOR, "section[aria-labelledby=convoys] details a[href^='/console/households/']"
    )
    assert convoys, "a convoy lists its families, each linking to its case"
    returnees = browser.find(By.CSS_SELECTOR, "section[aria-labelledby=returnees] table")
    assert "Sənədləşmə" in returnees.text  # an unmet IASC criterion, in words
    assert "documentation" not in returnees.text
    assert browser.driver.find_elements(
        By.CSS_SELECTOR, "a[href='/console/settlements/ZAN-002/rounds/1']"
    )
    assert browser.console_errors() == []
    browser.check("settlement Aghali")


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
