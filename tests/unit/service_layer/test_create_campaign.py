"""Creating a campaign through its handler, over the in-memory fakes (tests/fakes/
unit_of_work.py): the rules ``POST /api/v1/campaigns`` answers 422 for, the channel's
default platforms, and that a refused campaign stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.db.models import Resource, Template
from services.domain.lifecycle import CampaignStatus
from services.domain.social import PLATFORMS
from services.service_layer import handlers
from services.service_layer.handlers import CampaignRefused, NewCampaign
from tests.fakes.unit_of_work import FakeStore, FakeUnitOfWork, fake_unit_of_work


def _library() -> tuple[FakeStore, FakeUnitOfWork]:
    store, uow = fake_unit_of_work()
    with uow:
        for channel in ("email", "social"):
            uow.templates.add(Template(id=f"t-{channel}", name=channel, channel=channel, text="x"))
        uow.resources.add(Resource(id="diet", title="Diet", url="https://example.org", kind="web"))
        uow.commit()
    return store, uow


def test_a_new_campaign_is_stored_as_a_draft_and_shown() -> None:
    store, uow = _library()
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    new = NewCampaign(
        "Spring", "email", "t-email", resources=["diet"], send_at=at, unsubscribe_group=7
    )
    view = handlers.create_campaign(uow, new)
    stored = store.campaigns[view["id"]]
    assert stored.status == CampaignStatus.DRAFT and view["status"] == "draft"
    assert (stored.name, stored.resources, stored.unsubscribe_group) == ("Spring", ["diet"], 7)
    assert view["send_at"] == at.isoformat() and view["platforms"] == []
    assert view["progress"] == {"total": 0, "sent": 0, "suppressed": 0, "failed": 0}
    assert store.commits == 2


@pytest.mark.parametrize(
    ("channel", "chosen", "platforms"),
    [("social", None, list(PLATFORMS)), ("social", ["x"], ["x"]), ("email", None, [])],
)
def test_the_platforms_are_the_chosen_else_the_channels_default(
    channel: str, chosen: list[str] | None, platforms: list[str]
) -> None:
    store, uow = _library()
    view = handlers.create_campaign(
        uow, NewCampaign("P", channel, f"t-{channel}", platforms=chosen)
    )
    assert store.campaigns[view["id"]].platforms == platforms


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"audience": {"all": [1]}}, "audience: all[0]: must be an object, got a number"),
        ({"unsubscribe_group": 3, "channel": "social", "template_id": "t-social"},
         "unsubscribe_group: only email campaigns have one"),
        ({"template_id": "t-none"}, "template_id: unknown template 't-none'"),
        ({"template_id": "t-social"}, "template_id: a social template cannot serve a email campaign"),
        ({"resources": ["diet", "sleep"]}, "resources: unknown resource ids ['sleep']"),
    ],
)  # fmt: skip
def test_a_campaign_breaking_a_rule_is_refused_and_nothing_is_stored(
    fields: dict[str, object], problem: str
) -> None:
    store, uow = _library()
    new = NewCampaign(**{"name": "N", "channel": "email", "template_id": "t-email"} | fields)  # type: ignore[arg-type]
    with pytest.raises(CampaignRefused) as refused:
        handlers.create_campaign(uow, new)
    assert str(refused.value) == problem
    assert store.campaigns == {} and store.commits == 1


def test_the_posts_check_runs_after_the_rules_and_its_refusal_stores_nothing() -> None:
    store, uow = _library()
    checked: list[str] = []

    def too_long() -> None:
        checked.append("posts")
        raise ValueError("platforms: the x post is 300 characters, at most 280")

    with pytest.raises(CampaignRefused, match="^platforms: the x post is 300"):
        handlers.create_campaign(uow, NewCampaign("S", "social", "t-social"), too_long)
    with pytest.raises(CampaignRefused, match="^template_id"):
        handlers.create_campaign(uow, NewCampaign("S", "social", "t-none"), too_long)
    assert checked == ["posts"] and store.campaigns == {}


def test_only_an_email_campaign_is_throttled() -> None:
    store, uow = _library()
    view = handlers.create_campaign(
        uow, NewCampaign("T", "email", "t-email", throttle_per_hour=500)
    )
    assert store.campaigns[view["id"]].throttle_per_hour == 500
    assert view["throttle_per_hour"] == 500
    with pytest.raises(CampaignRefused, match="throttle_per_hour: only email"):
        handlers.create_campaign(uow, NewCampaign("S", "social", "t-social", throttle_per_hour=5))
