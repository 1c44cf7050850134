from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import create_database, require_env
from tests.support_tsa import LocalTSA, make_authority, serving


@pytest.fixture(scope="session")
def server_url() -> str:
    return require_env("DATABASE_URL")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return require_env("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture
def database_url(server_url: str) -> str:
    """A fresh, empty database for one test."""
    return create_database(server_url)


@pytest.fixture
def topic_prefix() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def logs_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """A local RFC 3161 timestamping authority (``openssl ts``) over HTTP: its ``url`` to
    request tokens from, its ``ca_pem`` (root certificate) to verify them with."""
    with serving(make_authority(tmp_path_factory.mktemp("tsa"))) as tsa:
        yield tsa
