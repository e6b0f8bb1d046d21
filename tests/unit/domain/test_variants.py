"""Content tests: the test share is split evenly and stably between the variants, and
the rest wait for the decision; a test's rules are checked when it is made."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.domain.holdouts import assignment_unit
from services.domain.variants import (
    ContentTest,
    ContentTestError,
    Variant,
    converted_by,
    experiment_name,
    variant_of,
)

KEY = b"variants-test-key"
WHEN = datetime(2026, 5, 1, 9, tzinfo=UTC)


def _variants(campaign: str, share: float, n: int, people: int) -> list[int | None]:
    name = experiment_name(campaign)
    return [variant_of(assignment_unit(KEY, name, f"p{i}"), share, n) for i in range(people)]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_test_share_is_split_evenly_between_the_variants(n):
    got = Counter(_variants("c1", 0.3, n, 20_000))
    assert abs(20_000 - got.pop(None) - 6_000) < 300  # the rest: about 70%
    assert set(got) == set(range(n))
    assert max(got.values()) - min(got.values()) < 0.15 * 6_000 / n


def test_the_split_is_stable_and_differs_between_campaigns():
    assert _variants("c1", 0.3, 3, 500) == _variants("c1", 0.3, 3, 500)
    assert _variants("c1", 0.3, 3, 500) != _variants("c2", 0.3, 3, 500)


def test_the_split_is_independent_of_the_holdout():
    holdout = [assignment_unit(KEY, "campaign:c1", f"p{i}") < 0.5 for i in range(4000)]
    tested = _variants("c1", 0.5, 2, 4000)
    both = sum(1 for h, t in zip(holdout, tested, strict=True) if h and t is not None)
    assert 850 < both < 1150  # about a quarter, as for independent draws


def test_a_content_test_needs_2_to_5_variants_a_share_in_0_1_and_a_known_metric():
    two = (Variant(subject="A"), Variant(subject="B"))
    ContentTest(two, 0.2, "open", WHEN)
    for variants, share, metric in [(two[:1], 0.2, "open"), (two * 3, 0.2, "open"),
                                    (two, 1.0, "use"), (two, 0.0, "use"), (two, 0.2, "click")]:  # fmt: skip
        with pytest.raises(ContentTestError):
            ContentTest(variants, share, metric, WHEN)


def test_an_event_counts_after_the_send_and_by_the_decision():
    decide = datetime(2026, 5, 3, tzinfo=UTC)
    assert converted_by(WHEN, datetime(2026, 5, 2, tzinfo=UTC), decide)
    assert converted_by(WHEN, decide, decide)
    assert not converted_by(WHEN, WHEN, decide)
    assert not converted_by(WHEN, datetime(2026, 5, 4, tzinfo=UTC), decide)
