from __future__ import annotations

from pathlib import Path

import pytest

from domain.base import Actor
from infra.config import ConfigurationError, Settings, parse_api_tokens


def test_api_tokens_map_each_token_to_a_user_and_role() -> None:
    assert parse_api_tokens("t1=alice:operator, t2=bob:auditor") == {
        "t1": Actor("alice", "operator"),
        "t2": Actor("bob", "auditor"),
    }


@pytest.mark.parametrize("raw", ["t1", "t1=alice", "t1=alice:janitor", "=alice:operator"])
def test_malformed_api_tokens_are_refused_with_a_clear_message(raw: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_api_tokens(raw)


def test_production_refuses_to_start_without_identities() -> None:
    with pytest.raises(ConfigurationError, match="API_TOKEN_HASHES"):
        Settings.from_env({}).with_tokens_for_api()


def test_production_refuses_plaintext_tokens() -> None:
    with pytest.raises(ConfigurationError, match="only development mode accepts"):
        Settings.from_env({"API_TOKENS": "t=u:operator"})


def test_token_hashes_name_the_user_role_districts_and_expiry() -> None:
    digest = "ab" * 32
    settings = Settings.from_env(
        {"API_TOKEN_HASHES": f"{digest}=zaur:operator:ZAN+LAC@2027-01-01T00:00:00Z"}
    )
    entry = settings.api_token_hashes[digest]
    assert entry.actor == Actor("zaur", "operator", ("LAC", "ZAN"))
    assert entry.expires is not None and entry.expires.year == 2027
    settings, invented = settings.with_tokens_for_api()
    assert invented == {}


@pytest.mark.parametrize(
    "raw", ["abc=u:operator", f"{'ab' * 32}=u:janitor", f"{'ab' * 32}=u:operator:XYZ"]
)
def test_malformed_token_hashes_are_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"API_TOKEN_HASHES|district"):
        Settings.from_env({"API_TOKEN_HASHES": raw})


def test_oidc_needs_issuer_audience_and_an_https_or_file_jwks_url() -> None:
    with pytest.raises(ConfigurationError, match="OIDC_AUDIENCE"):
        Settings.from_env({"OIDC_ISSUER": "https://id.example/realms/c"})
    with pytest.raises(ConfigurationError, match="https: or file:"):
        Settings.from_env(
            {"OIDC_ISSUER": "i", "OIDC_AUDIENCE": "a", "OIDC_JWKS_URL": "http://id.example/k"}
        )


def test_development_invents_one_token_per_role_when_none_are_given() -> None:
    settings, invented = Settings.from_env(
        {"REINTEGRATION_ENV": "development"}
    ).with_tokens_for_api()
    assert sorted(a.role for a in invented.values()) == [
        "auditor",
        "integration",
        "operator",
        "supervisor",
    ]
    assert settings.api_tokens == invented


def test_given_tokens_are_used_as_they_are() -> None:
    settings, invented = Settings.from_env(
        {"API_TOKENS": "t=u:operator", "REINTEGRATION_ENV": "development"}
    ).with_tokens_for_api()
    assert invented == {}
    assert settings.api_tokens == {"t": Actor("u", "operator")}


def test_no_kafka_means_embedded_mode() -> None:
    assert not Settings.from_env({}).kafka_enabled
    assert Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}).kafka_enabled


@pytest.mark.parametrize(
    "env", [{"LOG_FORMAT": "xml"}, {"KAFKA_PARTITIONS": "zero"}, {"HTTP_PORT": "0"}]
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_several_published_keys_are_read_with_their_validity_for_rotation() -> None:
    import base64
    from datetime import UTC, datetime

    from infra.config import parse_audit_keys

    old, new = base64.b64encode(b"o" * 32).decode(), base64.b64encode(b"n" * 32).decode()
    keys = parse_audit_keys(f"{old}@/2027-01-01, {new}@2027-01-01T00:00:00Z/")
    assert [k.public for k in keys] == [b"o" * 32, b"n" * 32]
    assert keys[0].valid_until == datetime(2027, 1, 1, tzinfo=UTC) and keys[0].valid_from is None
    assert keys[1].valid_from == datetime(2027, 1, 1, tzinfo=UTC) and keys[1].valid_until is None
    assert keys[0].valid_at(datetime(2026, 12, 31, tzinfo=UTC))
    assert not keys[0].valid_at(datetime(2027, 1, 1, tzinfo=UTC))
    assert keys[1].valid_at(datetime(2027, 1, 1, tzinfo=UTC))
    settings = Settings.from_env({"AUDIT_PUBLIC_KEYS": old, "AUDIT_PUBLIC_KEY": new})
    assert len(settings.audit_public_keys) == 2  # the older single-key variable still counts


@pytest.mark.parametrize(
    "raw", ["not-base64!", "c2hvcnQ=", "b29vb29vb29vb29vb29vb29vb29vb29vb29vb29vb28=@yesterday/"]
)
def test_a_published_key_that_is_not_one_is_refused_at_start(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="AUDIT_PUBLIC_KEYS"):
        Settings.from_env({"AUDIT_PUBLIC_KEYS": raw})


def test_a_timestamping_authority_is_configured_with_its_certificates(tmp_path: Path) -> None:
    pem = tmp_path / "tsa-root.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n")
    settings = Settings.from_env(
        {
            "AUDIT_TSA_URL": "https://tsa.example/tsr",
            "AUDIT_TSA_CERTIFICATES": str(pem),
            "AUDIT_TSA_TIMEOUT_S": "2.5",
        }
    )
    assert settings.audit_tsa_url == "https://tsa.example/tsr"
    assert settings.audit_tsa_certificates == pem
    assert settings.audit_tsa_timeout_s == 2.5
    unset = Settings.from_env({})
    assert (unset.audit_tsa_url, unset.audit_tsa_certificates) == (None, None)
    assert unset.audit_tsa_timeout_s == 10


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUDIT_TSA_URL": "ftp://tsa.example/", "AUDIT_TSA_CERTIFICATES": "{pem}"}, "URL"),
        ({"AUDIT_TSA_URL": "tsa.example", "AUDIT_TSA_CERTIFICATES": "{pem}"}, "URL"),
        ({"AUDIT_TSA_URL": "https://tsa.example/"}, "AUDIT_TSA_CERTIFICATES is not"),
        ({"AUDIT_TSA_CERTIFICATES": "{missing}"}, "cannot read"),
        ({"AUDIT_TSA_CERTIFICATES": "{not_pem}"}, "no PEM certificate"),
        ({"AUDIT_TSA_TIMEOUT_S": "soon"}, "AUDIT_TSA_TIMEOUT_S"),
        ({"AUDIT_TSA_TIMEOUT_S": "0"}, "AUDIT_TSA_TIMEOUT_S"),
        ({"AUDIT_TSA_TIMEOUT_S": "nan"}, "AUDIT_TSA_TIMEOUT_S"),
    ],
)
def test_a_misconfigured_timestamping_authority_is_refused_at_start(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    pem, not_pem = tmp_path / "root.pem", tmp_path / "root.der"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n")
    not_pem.write_bytes(b"\x30\x82")
    files = {"pem": pem, "not_pem": not_pem, "missing": tmp_path / "absent.pem"}
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env({name: value.format(**files) for name, value in env.items()})


def test_the_schema_is_managed_by_each_service_unless_the_owner_role_keeps_it() -> None:
    assert Settings.from_env({}).manages_schema
    assert not Settings.from_env({"DATABASE_SCHEMA_MANAGED": "owner"}).manages_schema
    with pytest.raises(ConfigurationError, match="DATABASE_SCHEMA_MANAGED"):
        Settings.from_env({"DATABASE_SCHEMA_MANAGED": "app"})


CONSOLE_OIDC = {
    "OIDC_ISSUER": "https://id.committee.example/realms/reintegration",
    "OIDC_AUDIENCE": "reintegration-api",
    "OIDC_JWKS_URL": "https://id.committee.example/realms/reintegration/certs",
    "OIDC_CLIENT_ID": "reintegration-console",
    "CONSOLE_PUBLIC_URL": "https://reintegration.example.gov.az",
}


def test_the_console_signs_in_through_the_providers_discovery_document() -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    console = Settings.from_env({**CONSOLE_OIDC, "CONSOLE_SESSION_KEY": key}).console

    assert console.oidc_sign_in
    assert console.oidc_discovery_url == (
        "https://id.committee.example/realms/reintegration/.well-known/openid-configuration"
    )
    assert console.oidc_client_secret is None  # a public client: PKCE alone
    assert console.session_hours == 8


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({}, "CONSOLE_SESSION_KEY"),  # every worker must read every session
        ({"CONSOLE_SESSION_KEY": "not-a-key"}, "CONSOLE_SESSION_KEY"),
        ({"CONSOLE_PUBLIC_URL": "http://reintegration.example.gov.az"}, "CONSOLE_PUBLIC_URL"),
        ({"OIDC_DISCOVERY_URL": "http://id.example/.well-known/x"}, "OIDC_DISCOVERY_URL"),
    ],
)
def test_a_console_sign_in_that_is_not_safe_in_production_is_refused(
    changes: dict[str, str], named: str
) -> None:
    from cryptography.fernet import Fernet

    env = {**CONSOLE_OIDC, "CONSOLE_SESSION_KEY": Fernet.generate_key().decode(), **changes}
    if not changes:
        del env["CONSOLE_SESSION_KEY"]
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)
