"""What a person chose on their preference page: topics and a frequency.

* **Topics**: the person turns off topics (from the resources' topics). A campaign
  whose resources all belong to topics the person turned off does not reach them; one
  with at least one topic they still want (or with no topic) does.
* **Frequency**: ``as_sent`` (every campaign, the default), ``monthly_digest`` (only
  campaigns marked as the digest; no journey message), ``none`` (unsubscribed: the page
  records it as an unsubscribe too).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Frequency", "campaign_reason", "journey_reason", "parse_frequency", "topics_reason"]


class Frequency(StrEnum):
    AS_SENT = "as_sent"
    MONTHLY_DIGEST = "monthly_digest"
    NONE = "none"


def parse_frequency(value: str | None) -> Frequency:
    """The stored or posted frequency; anything unknown is ``as_sent``."""
    try:
        return Frequency(value or Frequency.AS_SENT)
    except ValueError:
        return Frequency.AS_SENT


def campaign_reason(
    frequency: str | None, topics_off: Iterable[str], topics: Iterable[str], digest: bool
) -> str | None:
    """Why a campaign (of resources on ``topics``; ``digest`` or not) skips a person
    with these preferences, or None when it may reach them."""
    chosen = parse_frequency(frequency)
    if chosen == Frequency.NONE:
        return "preferences: no emails"
    if chosen == Frequency.MONTHLY_DIGEST and not digest:
        return "preferences: monthly digest only"
    return topics_reason(topics_off, topics)


def topics_reason(topics_off: Iterable[str], topics: Iterable[str]) -> str | None:
    """Why a message about ``topics`` (a campaign's resources', a journey's) skips a
    person who turned ``topics_off`` off: all of its topics are off. None otherwise."""
    wanted = set(topics)
    if wanted and wanted <= set(topics_off):
        return "preferences: topics turned off"
    return None


def journey_reason(frequency: str | None) -> str | None:
    """Why no journey message may go to a person with this frequency, or None."""
    chosen = parse_frequency(frequency)
    return None if chosen == Frequency.AS_SENT else f"preferences: {chosen}"
