"""The console in a real browser: Debian's chromium driven by Selenium through
chromedriver (``infra/browser.sh`` installs both), against `reintegration serve` with real
PostgreSQL and Kafka, on demonstration data (`reintegration demo great-return`).

Every test saves screenshots under the test run's folder (``$TEST_ARTIFACTS``, by default
``.data/test/artifacts``) and runs axe-core on every page it opens (:func:`Browser.check`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from infra.identity import token_hash
from tests.support import ROOT as PROJECT_ROOT
from tests.support import Service, create_database, free_port, wait_for_http

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or PROJECT_ROOT / ".data" / "test" / "artifacts")

ACCOUNTS = {
    "operator": ("console-op", "operator"),
    "supervisor": ("console-sup", "supervisor"),
    "auditor": ("console-aud", "auditor"),
}
SCOPED_TOKEN = "scoped-operator-token"
"""An operator limited to Fuzuli district (FUZ): Aghali (ZAN-002) is in Zangilan, outside."""
SCOPED = f"{token_hash(SCOPED_TOKEN)}=console-fuz:operator:FUZ"

if (not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists()) and not os.environ.get(
    "REQUIRE_BROWSER"
):
    pytest.skip(
        "the browser tests need chromium and chromedriver (infra/browser.sh installs them)",
        allow_module_level=True,
    )


@dataclass
class Console:
    base_url: str
    database_url: str
    service: Service
    tokens: dict[str, str] = field(default_factory=dict)
    topic_prefix: str = ""  # KAFKA_TOPIC_PREFIX of the service

    def api(self, role: str = "operator") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if role == "auditor":
            headers["X-Access-Reason"] = "browser test"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def console(
    server_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """`reintegration serve` in development (its development accounts on the sign-in page)
    with a district-scoped operator besides, and the Great Return demonstration data."""
    database_url = create_database(server_url)
    port = free_port()
    tokens = {role: f"console-{role}-{secrets.token_hex(8)}" for role in ACCOUNTS}
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": f"b{secrets.token_hex(4)}",
        "KAFKA_PARTITIONS": "3",
        "REINTEGRATION_ENV": "development",
        "API_TOKENS": ",".join(
            f"{tokens[role]}={user}:{r}" for role, (user, r) in ACCOUNTS.items()
        ),
        "API_TOKEN_HASHES": SCOPED,
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        "HTTP_RATE_LIMIT": "100000/minute",
        "HTTP_AUTH_FAILURES_PER_MINUTE": "100000",
        "AUDIT_CHECKPOINT_INTERVAL_S": "5",  # a signed checkpoint soon after the demo
    }
    folder = tmp_path_factory.mktemp("console")
    demo = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/reintegration"), "demo", "great-return", "--families", "60"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, f"the demonstration data failed:\n{demo.stderr[-3000:]}"
    service = Service(["serve"], env, folder / "service.log").start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url, service)
        yield Console(base_url, database_url, service, tokens, env["KAFKA_TOPIC_PREFIX"])
    finally:
        service.stop()


class Browser:
    """A chromium window on the console, with what every test does: sign in, open a page,
    check it with axe-core, save a screenshot."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, folder: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.folder = folder
        self.shots = 0

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def sign_in(self, role: str) -> None:
        """Signs in as one of the development accounts (``operator``, ``supervisor``,
        ``auditor``) through the sign-in page's own buttons."""
        self.driver.delete_all_cookies()
        self.open("/console/sign-in")
        user = ACCOUNTS[role][0]
        self.find(By.XPATH, f"//button[contains(., '{user} (')]").click()
        self.signed_in()

    def sign_in_with_token(self, token: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/console/sign-in")
        self.find(By.ID, "token").send_keys(token)
        self.find(By.CSS_SELECTOR, "form[action$='/development'] button[type=submit]").click()
        self.signed_in()

    def signed_in(self) -> None:
        """Until the sign-in's redirect has landed (the sign-in page has a heading too: a page
        opened before the redirect lands would be overtaken by it)."""
        WebDriverWait(self.driver, 15).until(
            lambda d: (
                "/console/sign-in" not in d.current_url
                and d.execute_script("return document.readyState") == "complete"
            )
        )
        self.wait_for(By.CSS_SELECTOR, "main h1")

    def find(self, by: str, value: str) -> WebElement:
        return self.wait_for(by, value)

    def wait_for(self, by: str, value: str, timeout: float = 15) -> WebElement:
        found: WebElement = WebDriverWait(self.driver, timeout).until(
            expected_conditions.presence_of_element_located((by, value))
        )
        return found

    def wait_for_text(self, by: str, value: str, text: str, timeout: float = 15) -> None:
        WebDriverWait(self.driver, timeout).until(
            expected_conditions.text_to_be_present_in_element((by, value), text)
        )

    @property
    def heading(self) -> str:
        return str(self.find(By.CSS_SELECTOR, "main h1").text)

    def screenshot(self, name: str) -> Path:
        self.shots += 1
        safe = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        path = self.folder / f"{self.shots:02d}-{safe}.png"
        # The whole page, not only the window (Chrome DevTools: capture beyond the viewport).
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": min(size["height"], 8000),
                    "scale": 1,
                },
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is."""
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
            ".then(r => done(JSON.stringify(r.violations)))"
            ".catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', "
            "description: String(e), nodes: []}])));"
        )
        violations: list[dict[str, Any]] = json.loads(result)
        return [v for v in violations if v.get("impact") in ("serious", "critical")]

    def check(self, name: str) -> None:
        """Screenshot, then axe-core: zero serious or critical violations."""
        self.screenshot(name)
        found = self.axe()
        assert not found, f"{name}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v.get('help', v.get('description'))} at "
            f"{[n.get('target') for n in v.get('nodes', [])][:3]}"
            for v in found
        )

    def console_errors(self) -> list[str]:
        """Messages the page logged at SEVERE: scripts refused by the CSP, failed loads."""
        return [
            str(entry["message"])
            for entry in self.driver.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]


@pytest.fixture
def browser(console: Console, request: pytest.FixtureRequest) -> Iterator[Browser]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=az",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    folder = ARTIFACTS / "screenshots" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    opened = Browser(driver, console.base_url, folder)
    try:
        yield opened
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:  # what the page showed when the test failed
            opened.screenshot(f"failed at {driver.current_url.split('/', 3)[-1]}")
            (folder / "failed-page.html").write_text(driver.page_source, encoding="utf-8")
        driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
