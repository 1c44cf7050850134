"""The auditor's HTML case report: values as people write them, nothing from the data run as
markup, no odd text able to break the page."""

from __future__ import annotations

from infra.case_report import LABELS, moment, readable, render_html

EN = LABELS["en"]


def test_dates_times_and_yes_no_read_as_people_write_them() -> None:
    assert moment("2026-11-30", EN) == "30 November 2026"
    assert moment("2026-11-30T19:37:36.123+00:00", EN) == "30 November 2026, 19:37"
    assert moment("2026-11-30", LABELS["az"]) == "30 noyabr 2026"
    assert str(readable(True, EN)) == "yes" and str(readable(None, EN)) == "—"


def test_text_that_only_looks_like_a_date_stays_as_it_is() -> None:
    assert (
        moment("2024-05-01T10:00 visited the family", EN) == "2024-05-01T10:00 visited the family"
    )
    assert moment("2024-13-45", EN) == "2024-13-45"


def test_markup_in_the_data_is_shown_not_run_and_escaped_once() -> None:
    history = {
        "household_id": "h",
        "events": [
            {
                "position": 1,
                "event_type": "reintegration.registry.HouseholdRegistered",
                "aggregate": "Household",
                "aggregate_version": 1,
                "occurred_at": "2026-11-30T10:00:00+00:00",
                "actor_id": "<img src=x onerror=alert(1)>",
                "actor_role": "operator",
                "reason": "<script>alert(1)</script>",
                "correlation_id": "c",
                "causation_id": "c",
                "data": {"names": ["O'Brien", "<b>bold</b>"], "note": "<i>x</i>"},
                "chain_hash": None,
            }
        ],
    }
    page = render_html(history, None, "auditor", "en")
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "O&#39;Brien" in page and "&amp;#39;" not in page
    assert "Household registered" in page
