from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import create_database, require_env
from tests.support_tsa import LocalTSA, make_authority, serving


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--part",
        choices=["all", "shared", "alone"],
        default="all",
        help="shared: every test but those marked `alone`; alone: only those (infra/test.sh "
        "runs the shared part on two pytest-xdist workers, then the other on its own)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = config.getoption("part")
    if part == "all":
        return
    wanted = [i for i in items if (i.get_closest_marker("alone") is not None) == (part == "alone")]
    if len(wanted) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in wanted])
        items[:] = wanted


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
