"""Signing in to the console through the identity provider: the authorization code flow with
PKCE, against a provider of our own (tests/support_oidc.py), with no development accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import Browser
from tests.support import Service, create_database, free_port, wait_for_http
from tests.support_oidc import CLIENT_ID, AuthorizationServer
from tests.unit.test_identity import AUDIENCE, ISSUER, Provider


@pytest.fixture(scope="module")
def provider_and_console(
    server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AuthorizationServer, str]]:
    folder: Path = tmp_path_factory.mktemp("oidc")
    provider = AuthorizationServer(Provider(folder))
    port = free_port()
    env = {
        "DATABASE_URL": create_database(server_url),
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "REINTEGRATION_ENV": "development",  # the provider here speaks http, not https
        "API_TOKENS": "",
        "API_TOKEN_HASHES": "",
        "OIDC_ISSUER": ISSUER,
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_JWKS_URL": provider.provider.path.as_uri(),
        "OIDC_ROLES_CLAIM": "realm_access.roles",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_DISCOVERY_URL": provider.discovery_url,
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    with provider.running():
        service = Service(["serve"], env, folder / "service.log").start()
        try:
            wait_for_http(f"http://127.0.0.1:{port}", service)
            yield provider, f"http://127.0.0.1:{port}"
        finally:
            service.stop()


@pytest.fixture
def oidc_browser(
    browser: Browser, provider_and_console: tuple[AuthorizationServer, str]
) -> Browser:
    browser.base_url = provider_and_console[1]
    return browser


def test_an_operator_signs_in_through_the_identity_provider_with_pkce(
    oidc_browser: Browser, provider_and_console: tuple[AuthorizationServer, str]
) -> None:
    provider, _ = provider_and_console
    oidc_browser.open("/console/search")
    assert oidc_browser.driver.find_elements(By.ID, "token") == []  # no development sign-in
    oidc_browser.check("sign-in with the provider")

    oidc_browser.find(By.CSS_SELECTOR, "a[href^='/console/sign-in/provider']").click()

    oidc_browser.wait_for(By.CSS_SELECTOR, "form[role=search]")  # back where they started
    assert oidc_browser.driver.current_url.endswith("/console/search")
    assert "leyla" in oidc_browser.find(By.CSS_SELECTOR, ".actor").text
    assert "ZAN" in oidc_browser.find(By.CSS_SELECTOR, ".actor").text  # the token's districts
    assert provider.refusals == []
    cookie = oidc_browser.driver.get_cookie("console_session")
    assert cookie is not None
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    oidc_browser.check("signed in through the provider")


def test_an_answer_to_another_sign_in_is_refused(
    provider_and_console: tuple[AuthorizationServer, str],
) -> None:
    provider, base_url = provider_and_console
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        started = browser.get("/console/sign-in/provider")
        assert started.status_code == 303
        authorize = httpx.get(started.headers["location"])
        callback = authorize.headers["location"]
        forged_state = callback.split("state=")[0] + f"state={secrets.token_urlsafe(32)}"

        code = callback.split("code=")[1].split("&")[0]

        refused = browser.get(forged_state)

        assert refused.status_code == 401
        assert code in provider.codes  # refused before the code was ever exchanged
        assert browser.get("/console").status_code == 303  # not signed in
    with httpx.Client(base_url=base_url, timeout=30) as stranger:
        # a callback without the sign-in's own cookie (another browser) is refused
        assert stranger.get(callback).status_code == 401
