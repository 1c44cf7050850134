"""The printable documents' own logic: reference numbers, the family's pseudonymous lottery
id found in a published round, the result list's tables, and a PDF that carries the
Azerbaijani letters."""

from __future__ import annotations

import io
from uuid import UUID, uuid4

from pypdf import PdfReader

from api.console.pages import documents
from domain.housing import pseudonym, round_id, seed_hash

HOUSEHOLD = UUID("9c0440d5-a3f7-4423-a476-d8b211efae81")
ROUND = round_id("ZAN-002", 1)


def published(entrants: list[UUID], assigned: list[UUID], reserve: list[UUID]) -> dict:
    alias = {h: pseudonym(ROUND, h) for h in entrants}
    return {
        "announcement": {
            "round_id": str(ROUND),
            "round_number": 1,
            "entrants": [
                {
                    "id": alias[h],
                    "priority_group": "collective_centre" if i % 2 else "other",
                    "priority_rank": 1 + i % 2,
                    "score": float(i),
                    "rooms_entitled": 3,
                }
                for i, h in enumerate(entrants)
            ],
        },
        "result": {
            "seed": "47bc931c",
            "assignments": [
                {"id": alias[h], "unit_id": str(uuid4()), "rooms": 3, "position": n}
                for n, h in enumerate(assigned, 1)
            ],
            "reserve": [
                {"id": alias[h], "rooms": 3, "position": n} for n, h in enumerate(reserve, 1)
            ],
        },
    }


def test_a_reference_number_is_stable_and_names_no_one() -> None:
    first = documents.reference(documents.OFFER, "ZAN-002", HOUSEHOLD)
    assert first == documents.reference(documents.OFFER, "ZAN-002", HOUSEHOLD)
    assert first.startswith("OL-ZAN-002-") and len(first) == len("OL-ZAN-002-") + 10
    assert str(HOUSEHOLD) not in first and str(HOUSEHOLD)[:8] not in first.lower()
    assert documents.reference(documents.CONSENT, "ZAN-002", HOUSEHOLD) != first
    assert documents.reference(documents.OFFER, "ZAN-002", uuid4()) != first


def test_the_offer_letter_finds_the_familys_pseudonym_among_the_entrants() -> None:
    other = uuid4()
    result = published([other, HOUSEHOLD], assigned=[HOUSEHOLD], reserve=[other])
    entry = documents.find_entry(result, HOUSEHOLD)
    assert entry is not None
    assert entry["pseudonym"] == pseudonym(ROUND, HOUSEHOLD)
    assert entry["assignment"]["position"] == 1 and entry["reserve"] is None
    assert documents.find_entry(result, other)["reserve"]["position"] == 1  # type: ignore[index]


def test_a_household_that_was_not_an_entrant_has_no_lottery_id() -> None:
    result = published([uuid4()], assigned=[], reserve=[])
    assert documents.find_entry(result, HOUSEHOLD) is None


def test_the_result_list_orders_entrants_by_priority_and_gives_the_seeds_digest() -> None:
    families = [uuid4() for _ in range(4)]
    result = published(families, assigned=families[:2], reserve=families[2:])
    lists = documents.lottery_lists(result)
    ranks = [e["priority_rank"] for e in lists["entrants"]]
    assert ranks == sorted(ranks)
    assert [a["position"] for a in lists["assignments"]] == [1, 2]
    assert {e["place"][0] for e in lists["entrants"]} == {"assigned", "reserve"}
    assert lists["seed_digest"] == seed_hash("47bc931c")


def test_an_undrawn_round_has_no_seed_and_no_places() -> None:
    result = published([HOUSEHOLD], assigned=[], reserve=[])
    result["result"] = None
    lists = documents.lottery_lists(result)
    assert lists["seed"] is None and lists["seed_digest"] is None
    assert lists["entrants"][0]["place"] == (None, None, None)


def test_settlement_names_follow_the_language() -> None:
    assert documents.settlement_names("ZAN-002", "az")["name"] == "Ağalı"
    assert documents.settlement_names("ZAN-002", "en")["name"] == "Aghali"
    assert documents.settlement_names("ZAN-002", "az")["district"] == "Zəngilan"


def test_the_pdf_carries_the_azerbaijani_letters_in_dejavu_sans() -> None:
    html = (
        '<!doctype html><html lang="az"><body class="print">'
        '<article class="document" data-page-label="Səhifə" data-reference="OL-1">'
        "<p>Ağalı, Zəngilan: İsmayıllı, Şüşə, çöl, ğ ı ö ü</p></article></body></html>"
    )
    pdf = documents.pdf_bytes(html)
    reader = PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    for letter in "əğıİöşüç":
        assert letter in text, letter
    assert "Səhifə 1 / 1" in text  # the page footer from @page
    fonts = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("DejaVu-Sans" in f for f in fonts), fonts
