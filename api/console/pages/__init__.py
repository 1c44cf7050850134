"""The console's pages, one module per area; each has its own router, templates folder and
translation catalog (``locales/<language>/LC_MESSAGES/<module>.po``)."""

from __future__ import annotations

from api.console.pages import audit, case, documents, home, lottery, search, settlement, tasks

PAGES = (home, search, case, settlement, lottery, audit, tasks, documents)
