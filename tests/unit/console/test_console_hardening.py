from __future__ import annotations

import logging

import pytest

from api.console.pages.search import csv_cell
from infra.logging import configure_logging


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Məmmədov", "Məmmədov"),
        ("Əli-Ağa", "Əli-Ağa"),
        ("=1+2", "'=1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ('Ali;=HYPERLINK("http://x";"y")', 'Ali;\'=HYPERLINK("http://x";"y")'),
        (["a", "=b"], "a; '=b"),
        (None, ""),
    ],
)
def test_an_exported_cell_never_starts_a_formula_even_after_a_separator(
    value: object, written: str
) -> None:
    assert csv_cell(value) == written


def test_request_addresses_of_the_consoles_api_calls_are_not_logged() -> None:
    """httpx logs every request's address at INFO: the console's calls hold FINs and names."""
    configure_logging("json", "debug")
    for name in ("httpx", "httpcore", "weasyprint"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
