"""Experiment figures an analyst sees: a content test's decision and a campaign's sending
progress withhold counts of 1 to 10 people, with a partner, and what is made from them."""

from __future__ import annotations

from services.analytics import sharing

DECISION = {
    "metric": "open",
    "result": "variant B wins",
    "variants": [
        {"variant": "A", "people": 400, "converters": 120, "rate": 0.3},
        {"variant": "B", "people": 400, "converters": 160, "rate": 0.4},
        {"variant": "C", "people": 7, "converters": 2, "rate": 2 / 7},
    ],
    "comparisons": [
        {"variant": "B", "against": "A", "p_value": 0.001, "p_holm": 0.002},
        {"variant": "B", "against": "C", "p_value": 0.6, "p_holm": 0.6},
    ],
}


def test_a_small_variant_shows_no_counts_rate_or_p_values():
    shared = sharing.decision(DECISION, 11)
    c = shared["variants"][2]
    assert (c["people"], c["converters"], c["rate"], c["suppressed"]) == (None, None, None, True)
    assert shared["comparisons"][1]["p_value"] is None  # B against C would give C's rate
    hidden = [v["variant"] for v in shared["variants"] if v.get("suppressed")]
    assert len(hidden) == 2 and "C" in hidden  # a partner: the totals cannot give C back
    assert sharing.decision(DECISION, 0) == DECISION  # suppression off: exact
    assert DECISION["variants"][2]["people"] == 7  # the stored decision is not changed


def test_a_campaigns_progress_withholds_a_small_status_with_a_partner():
    view = {"id": "c1", "progress": {"sent": 50, "failed": 3, "held_out": 20, "total": 73}}
    shared = sharing.campaign(view, 11)["progress"]
    assert shared["failed"] is None and "failed" in shared["suppressed"]
    withheld = [k for k in ("sent", "failed", "held_out", "total") if shared[k] is None]
    assert len(withheld) >= 2  # failed cannot be worked out from the total and the rest
    assert sharing.campaign(view, 0) == view
