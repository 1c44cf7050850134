"""The printable documents: the offer letter with the family's pseudonymous lottery id, the
consent form, the convoy manifest and the lottery result list, each opened in the browser
(axe-core on every one) and downloaded as PDF from the same template (parsed with pypdf),
on the Great Return demonstration data of Aghali (ZAN-002)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from pypdf import PdfReader
from selenium.webdriver.common.by import By

from domain.housing import pseudonym
from tests.browser.conftest import ACCOUNTS, SCOPED_TOKEN, Browser, Console
from tests.support import wait_until

SETTLEMENT = "ZAN-002"
LETTERS = "əğıöşüç"


@dataclass(frozen=True)
class Demo:
    household_id: str
    head_name: str
    lottery_id: str
    convoy_id: str
    families: int


@pytest.fixture(scope="module")
def demo(console: Console) -> Demo:
    """A family of Aghali that travelled in a convoy, and its id in the published round (once
    the projections have caught up with the demonstration data)."""
    with console.api("operator") as api:

        def travelled() -> Any:
            convoys = api.get("/api/v1/convoys", params={"settlement_code": SETTLEMENT}).json()
            families = [f for c in convoys for f in c["families"]]
            if not families:
                return None
            answer = api.get(f"/api/v1/households/{families[0]['household_id']}")
            return convoys[0] if answer.status_code == 200 else None

        convoy = wait_until(travelled, timeout_s=180, interval_s=1, what="a convoy of Aghali")
        family = convoy["families"][0]
        household = api.get(f"/api/v1/households/{family['household_id']}").json()
        result = api.get(f"/api/v1/settlements/{SETTLEMENT}/rounds/1/result").json()
    head = next(m for m in household["members"] if m["relationship"] == "head")
    announcement = result["announcement"]
    lottery_id = pseudonym(UUID(announcement["round_id"]), UUID(family["household_id"]))
    assert lottery_id in {e["id"] for e in announcement["entrants"]}
    return Demo(
        family["household_id"],
        f"{head['last_name']} {head['first_name']}",
        lottery_id,
        convoy["convoy_id"],
        len(convoy["families"]),
    )


def documents(demo: Demo) -> dict[str, str]:
    return {
        "offer letter": f"/console/documents/offer-letter/{demo.household_id}",
        "consent form": f"/console/documents/consent-form/{demo.household_id}",
        "convoy manifest": f"/console/documents/convoys/{demo.convoy_id}",
        "lottery result list": f"/console/documents/rounds/{SETTLEMENT}/1",
    }


def test_an_operator_opens_every_document_with_its_pdf_link_and_print_button(
    browser: Browser, demo: Demo
) -> None:
    browser.sign_in("operator")
    for name, path in documents(demo).items():
        browser.open(path)
        document = browser.find(By.CSS_SELECTOR, "article.document")
        link = browser.find(By.CSS_SELECTOR, ".document-actions a[download]")
        assert link.get_attribute("href").endswith(f"{path}.pdf")
        assert browser.find(By.CSS_SELECTOR, "button[data-print]").is_displayed()
        reference = browser.find(By.CSS_SELECTOR, ".document-meta .reference").text
        assert re.fullmatch(r"[A-Z]{2}-ZAN-002-[0-9A-F]{10}", reference), reference
        assert "Ağalı" in document.text, name
        browser.check(name)
        if name == "offer letter":
            assert demo.lottery_id in browser.find(By.CSS_SELECTOR, ".lottery-id").text
            assert demo.head_name in document.text
        if name == "convoy manifest":
            rows = browser.driver.find_elements(By.CSS_SELECTOR, "table.manifest tbody tr")
            assert len(rows) == demo.families
        if name == "lottery result list":
            assert demo.lottery_id in document.text
            assert "sha256:" in document.text
    assert browser.console_errors() == []


def test_a_document_reads_in_english_when_asked(browser: Browser, demo: Demo) -> None:
    browser.sign_in("supervisor")
    browser.open(documents(demo)["offer letter"] + "?lang=en")
    assert browser.heading == "Housing offer letter"
    assert "Your family's lottery id" in browser.find(By.CSS_SELECTOR, ".lottery-id").text
    browser.check("offer letter in English")


def test_an_auditor_states_a_purpose_before_a_document_with_personal_data(
    browser: Browser, demo: Demo
) -> None:
    browser.sign_in("auditor")
    browser.open(documents(demo)["consent form"])
    field = browser.find(By.ID, "reason")
    browser.check("consent form asks the auditor's purpose")

    field.send_keys("audit request 2026/41")
    browser.find(By.CSS_SELECTOR, "main form button[type=submit]").click()

    browser.wait_for(By.CSS_SELECTOR, "article.document")
    assert demo.head_name in browser.find(By.CSS_SELECTOR, "article.document").text
    assert "reason=audit" in browser.find(By.CSS_SELECTOR, "a[download]").get_attribute("href")
    browser.check("consent form for the auditor")


def test_a_scoped_operator_cannot_print_another_districts_offer_letter(
    browser: Browser, demo: Demo
) -> None:
    browser.sign_in_with_token(SCOPED_TOKEN)
    browser.open(documents(demo)["offer letter"])
    assert browser.driver.find_elements(By.CSS_SELECTOR, "article.document") == []
    assert demo.head_name not in browser.driver.page_source
    browser.check("offer letter out of scope")


# --- the PDFs -------------------------------------------------------------------------------


class Signed:
    """The console over HTTP as a signed-in person. The session cookie is Secure, which an
    HTTP client keeps off plain http (a browser allows it on localhost), so it is carried
    here by hand."""

    def __init__(self, console: Console, role: str) -> None:
        self.client = httpx.Client(base_url=console.base_url, timeout=60)
        self.cookies: dict[str, str] = {}
        page = self._keep(self.client.get("/console/sign-in"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        token = console.tokens[role]
        signed = self.client.post(
            "/console/sign-in/development",
            data={"csrf": csrf.group(1), "token": token, "next": "/console"},
            headers=self._header(),
        )
        assert signed.status_code == 303, signed.text
        self._keep(signed)

    def _header(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, answer: httpx.Response) -> httpx.Response:
        for key, value in answer.headers.multi_items():
            if key == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return answer

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params, headers=self._header())


def pdf_text(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    disposition = answer.headers["content-disposition"]
    assert re.fullmatch(
        r'attachment; filename="[a-z-]+-[A-Z]{2}-ZAN-002-[0-9A-F]{10}\.pdf"', disposition
    )
    reader = PdfReader(io.BytesIO(answer.content))
    return "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    """The text without line breaks and spaces (a long id may wrap in the PDF)."""
    return "".join(text.split())


def test_every_document_downloads_as_a_pdf_with_its_data_and_azerbaijani_letters(
    console: Console, demo: Demo
) -> None:
    operator = Signed(console, "operator")
    paths = documents(demo)
    found = {name: pdf_text(operator.get(f"{path}.pdf")) for name, path in paths.items()}

    for name, text in found.items():
        assert "Ağalı" in text and "Zəngilan" in text, name
        assert all(letter in text for letter in LETTERS), name
        assert re.search(r"Səhifə 1 / \d+", text), name  # the page footer
        assert ACCOUNTS["operator"][0] not in text
    assert demo.lottery_id in flat(found["offer letter"])
    assert demo.head_name in found["offer letter"]
    assert "Ailənizin püşkatma identifikatoru" in found["offer letter"]
    assert demo.head_name in found["consent form"]
    assert demo.convoy_id in flat(found["convoy manifest"])
    assert f"{demo.families} ailə" in found["convoy manifest"]
    assert demo.lottery_id in flat(found["lottery result list"])
    assert "sha256:" in found["lottery result list"]


def test_a_pdf_is_in_the_language_asked_for(console: Console, demo: Demo) -> None:
    operator = Signed(console, "operator")
    text = pdf_text(operator.get(f"{documents(demo)['offer letter']}.pdf", lang="en"))
    assert "Housing offer letter" in text and "Your family's lottery id" in text
    assert "Page 1 / " in text
    assert "Aghali (Zangilan)" in text  # the settlement's English name


def test_an_auditors_pdf_records_the_reads_behind_it_with_the_purpose(
    console: Console, demo: Demo
) -> None:
    auditor = Signed(console, "auditor")
    purpose = "audit request 2026/42"
    text = pdf_text(auditor.get(f"{documents(demo)['offer letter']}.pdf", reason=purpose))
    assert demo.lottery_id in flat(text)

    with console.api("auditor") as api:
        log = api.get(
            "/api/v1/audit/access-log",
            params={"subject_id": demo.household_id, "actor_id": ACCOUNTS["auditor"][0]},
        ).json()
    reads = {e["resource"] for e in log["entries"] if e.get("reason") == purpose}
    assert {
        "/api/v1/households/{household_id}",
        "/api/v1/households/{household_id}/relocation",
    } <= reads
