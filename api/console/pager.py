"""One list of a page shown a page at a time: which page the address asks for, how many rows
a page holds, and the links to the previous and the next page, each keeping the rest of the
address (an auditor's purpose, the other lists' pages) and returning to the list's section.

The address names each list's page by a parameter of its own (``?returnees=3``), so two lists
of a page turn independently; ``per_page`` (1 to 500) changes every list's page size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

T = TypeVar("T")

MAX_PAGE = 10**6
MAX_PER_PAGE = 500


def asked_number(query: Mapping[str, str], name: str) -> int:
    """The page number the address asks for (the first when absent or not a number)."""
    given = query.get(name) or ""
    return min(int(given), MAX_PAGE) if given.isdigit() and int(given) > 0 else 1


def asked_size(query: Mapping[str, str], default: int) -> int:
    """Rows a page holds: ``per_page`` when the address gives a number of 1 to 500."""
    given = query.get("per_page") or ""
    return min(int(given), MAX_PER_PAGE) if given.isdigit() and int(given) > 0 else default


@dataclass(frozen=True)
class Pager:
    """Page ``number`` of a list of ``total`` rows, ``size`` a page, named ``name`` in the
    address; its links lead back to the element ``anchor`` of the page."""

    path: str
    query: Mapping[str, str]
    name: str
    anchor: str
    number: int
    size: int
    total: int = 0

    @classmethod
    def asked(
        cls, path: str, query: Mapping[str, str], name: str, default_size: int, anchor: str = ""
    ) -> Pager:
        """The page the address asks for; its total is given once known (:meth:`of`)."""
        size = asked_size(query, default_size)
        return cls(path, dict(query), name, anchor or name, asked_number(query, name), size)

    def of(self, total: int) -> Pager:
        """This page of a list of ``total`` rows (a number past the last page is the last)."""
        pages = max(1, math.ceil(total / self.size))
        return Pager(
            self.path, self.query, self.name, self.anchor, min(self.number, pages), self.size, total
        )

    def rows(self, items: Sequence[T]) -> list[T]:
        """This page's rows of the whole list ``items``."""
        return list(items[self.offset : self.offset + self.size])

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def previous(self) -> str | None:
        return self.link(self.number - 1) if self.number > 1 else None

    @property
    def next(self) -> str | None:
        return self.link(self.number + 1) if self.number < self.pages else None

    def link(self, number: int) -> str:
        """This address with page ``number`` of this list, at the list."""
        values = {**self.query, self.name: str(number)}
        if number == 1:
            del values[self.name]
        kept = {k: v for k, v in values.items() if v}
        return f"{self.path}{'?' + urlencode(kept) if kept else ''}#{self.anchor}"
