"""Needs matching: transparent scores, used resources never recommended."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.needs import (
    DECLARED,
    ENGAGED,
    MAX_ENGAGED,
    ResourceInfo,
    interests,
    recommend,
)

CATALOGUE = [
    ResourceInfo("starter", "Starter guide", frozenset({"newly-diagnosed"})),
    ResourceInfo("diet-tips", "Diet tips", frozenset({"diet"})),
    ResourceInfo("diet-school", "Lunch at school", frozenset({"diet", "school"})),
    ResourceInfo("school-plan", "School plan", frozenset({"school"})),
    ResourceInfo("worry", "When you worry", frozenset({"mental-health"})),
]


def test_declared_needs_and_usage_add_up_with_reasons():
    used = [CATALOGUE[1]]  # read the diet tips
    profile = interests(["School", "newly-diagnosed"], used)
    assert profile["diet"].points == ENGAGED and profile["school"].points == DECLARED
    recs = recommend(profile, CATALOGUE, {"diet-tips"}, limit=3)
    assert [r.resource_id for r in recs] == [
        "diet-school",
        "school-plan",
        "starter",
    ]  # ties by title
    assert recs[0].score == DECLARED + ENGAGED
    assert recs[0].reason == "matches school (a stated need), diet (1 resource on it used)"
    assert "diet-tips" not in {
        r.resource_id for r in recommend(profile, CATALOGUE, {"diet-tips"}, 10)
    }
    assert all(r.resource_id != "worry" for r in recommend(profile, CATALOGUE, set(), 10))


def test_no_needs_no_recommendations_and_limit_respected():
    assert recommend(interests([], []), CATALOGUE, set()) == []
    profile = interests(["diet", "school", "newly-diagnosed", "mental-health"], [])
    assert len(recommend(profile, CATALOGUE, set(), limit=2)) == 2


topics = st.sampled_from(["diet", "school", "transition", "mental-health", "newly-diagnosed"])
resources = st.lists(
    st.builds(
        ResourceInfo,
        st.text("abcdefgh", min_size=1, max_size=4),
        st.text("xyz ", max_size=5),
        st.frozensets(topics, max_size=3),
    ),
    max_size=12,
    unique_by=lambda r: r.id,
)


@given(resources, st.lists(topics, max_size=3), st.data())
@settings(max_examples=200, deadline=None)
def test_scores_are_sums_of_topic_points_and_sorted(catalogue, declared, data):
    engaged = data.draw(st.lists(st.sampled_from(catalogue), max_size=6)) if catalogue else []
    used = {r.id for r in engaged}
    profile = interests(declared, engaged)
    assert all(i.engaged <= MAX_ENGAGED for i in profile.values())
    recs = recommend(profile, catalogue, used, limit=50)
    by_id = {r.id: r for r in catalogue}
    for r in recs:
        assert r.resource_id not in used
        expected = sum(profile[t].points for t in by_id[r.resource_id].topics if t in profile)
        assert abs(r.score - expected) < 1e-9 and r.score > 0
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    unused_matching = [
        r for r in catalogue if r.id not in used and any(t in profile for t in r.topics)
    ]
    assert len(recs) == len(unused_matching)
