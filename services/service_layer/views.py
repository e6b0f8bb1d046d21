"""What the staff API shows of a campaign, from the campaign and its sends' progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.db.models import Campaign


def describe(campaign: Campaign, progress: dict[str, int]) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "template_id": campaign.template_id,
        "audience": campaign.audience,
        "resources": campaign.resources,
        "messengers": campaign.messengers,
        "platforms": campaign.platforms,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "status": campaign.status,
        "unsubscribe_group": campaign.unsubscribe_group,
        "children": campaign.children or "skip",
        "digest": bool(campaign.digest),
        "throttle_per_hour": campaign.throttle_per_hour,
        "progress": progress,
    }
