"""The contract of :class:`services.ports.CampaignRepository` (SQL on SQLite and
PostgreSQL, and the fake)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.db.models import Campaign
from services.domain.lifecycle import CampaignStatus, SendStatus
from tests.integration.repositories.conftest import TEMPLATE, Backend

DAY1 = datetime(2026, 1, 1, tzinfo=UTC)
DAY2 = datetime(2026, 1, 2, tzinfo=UTC)


def _campaign(campaign_id: str, **fields: object) -> Campaign:
    return Campaign(
        id=campaign_id, name=campaign_id, channel="email", template_id=TEMPLATE, **fields
    )


def test_added_campaigns_are_found_by_id_and_listed_by_status_oldest_first(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        uow.campaigns.add(_campaign("c3", status=CampaignStatus.SCHEDULED, created_at=DAY2))
        uow.campaigns.add(_campaign("c2", status=CampaignStatus.SCHEDULED, created_at=DAY1))
        uow.campaigns.add(_campaign("c1", status=CampaignStatus.SCHEDULED, created_at=DAY2))
        uow.campaigns.add(_campaign("d1"))  # no status: a draft
        uow.commit()
    with backend.uow() as uow:
        scheduled = uow.campaigns.with_status(CampaignStatus.SCHEDULED)
        assert [c.id for c in scheduled] == ["c2", "c1", "c3"]
        assert [c.id for c in uow.campaigns.with_status(CampaignStatus.DRAFT)] == ["d1"]
        assert uow.campaigns.with_status(CampaignStatus.SENT) == []
        found = uow.campaigns.get("c1")
        assert found is not None and found.name == "c1" and found.template_id == TEMPLATE
        assert uow.campaigns.get("nope") is None
        assert uow.campaigns.known({"c1", "d1", "ghost"}) == {"c1", "d1"}
        assert uow.campaigns.known(set()) == set()


def test_a_changed_status_is_kept_on_commit_only_and_readable_after(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.campaigns.add(_campaign("c1"))
        uow.commit()
    with backend.uow() as uow:
        campaign = uow.campaigns.get("c1")
        assert campaign is not None
        campaign.status = CampaignStatus.CANCELLED  # never committed
    assert campaign.status == CampaignStatus.CANCELLED  # still readable after the block
    with backend.uow() as uow:
        campaign = uow.campaigns.get("c1")
        assert campaign is not None and campaign.status == CampaignStatus.DRAFT
        campaign.status = CampaignStatus.SCHEDULED
        uow.commit()
    with backend.uow() as uow:
        assert [c.id for c in uow.campaigns.with_status(CampaignStatus.SCHEDULED)] == ["c1"]


def test_progress_counts_the_sends_of_one_campaign(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.campaigns.add(_campaign("c1"))
        uow.campaigns.add(_campaign("c2"))
        uow.commit()
    backend.add_sends("c1", [SendStatus.SENT, SendStatus.SENT, SendStatus.FAILED, "pending"])
    backend.add_sends("c2", [SendStatus.SUPPRESSED])
    with backend.uow() as uow:
        assert uow.campaigns.progress("c1") == {"total": 4, "sent": 2, "suppressed": 0, "failed": 1}
        assert uow.campaigns.progress("c2") == {"total": 1, "sent": 0, "suppressed": 1, "failed": 0}
        assert uow.campaigns.progress("c3") == {"total": 0, "sent": 0, "suppressed": 0, "failed": 0}
