"""Districts and settlements of the liberated territories, with stable codes.

The table is data (``reference/settlements.csv``): a code, once published, never changes
meaning. District codes follow ISO 3166-2:AZ where one exists (Aghdara, re-created in
2023, has none and uses AGD); a settlement code is its district code and a number.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class Settlement:
    code: str
    district_code: str
    district_en: str
    district_az: str
    region: str
    name_en: str
    name_az: str
    kind: str


@cache
def settlements() -> dict[str, Settlement]:
    text = files("domain").joinpath("reference/settlements.csv").read_text(encoding="utf-8")
    return {row["code"]: Settlement(**row) for row in csv.DictReader(text.splitlines())}


def settlement(code: str) -> Settlement | None:
    return settlements().get(code)
