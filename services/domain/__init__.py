"""WINWIN's domain: the pure model and rules, with no infrastructure imports.

Stages and the stage map, reporting periods, attribution models, pseudonyms, audience
filters, run-chart rules, the engagement event contract, the life cycle of campaigns
and sends, and consent. Everything here is plain
Python (dataclasses, enums, functions) and is safe to call from the API, the stream
agents and the reports alike.
"""

from services.domain.attribution import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_MODEL,
    DEFAULT_WINDOW_DAYS,
    MAX_TOUCHES,
    NO_VALUE,
    UNATTRIBUTED,
    Credit,
    Dimension,
    Model,
    Touch,
    TouchHistory,
    attribute,
    attribute_all,
    credited_keys,
    eligible_touches,
    touch_order,
)
from services.domain.audience import (
    EVERYONE,
    Audience,
    AudienceError,
    attribute_value,
    parse_audience,
)
from services.domain.consent import Consent
from services.domain.events import (
    CHANNELS,
    EventError,
    NormalisedEvent,
    check_event,
    format_timestamp,
    parse_timestamp,
)
from services.domain.lifecycle import CampaignStateError, CampaignStatus, PostStatus, SendStatus
from services.domain.periods import (
    PeriodKind,
    add_months,
    next_period,
    parse_period,
    period_bounds,
    period_label,
    period_of,
    period_range,
    period_start,
)
from services.domain.pseudonyms import is_pseudonym, messenger_ref, pseudonymise, visitor_ref
from services.domain.runcharts import growth_factor, median, shift_signals, trend_signals
from services.domain.stages import DEFAULT_STAGE_MAP, Stage, StageMap, StageMapError, implied

__all__ = [
    "CHANNELS",
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_MODEL",
    "DEFAULT_STAGE_MAP",
    "DEFAULT_WINDOW_DAYS",
    "MAX_TOUCHES",
    "EVERYONE",
    "NO_VALUE",
    "UNATTRIBUTED",
    "Audience",
    "AudienceError",
    "CampaignStateError",
    "CampaignStatus",
    "Consent",
    "Credit",
    "Dimension",
    "EventError",
    "Model",
    "NormalisedEvent",
    "PeriodKind",
    "PostStatus",
    "SendStatus",
    "Stage",
    "StageMap",
    "StageMapError",
    "Touch",
    "TouchHistory",
    "attribute",
    "attribute_all",
    "attribute_value",
    "check_event",
    "credited_keys",
    "eligible_touches",
    "format_timestamp",
    "growth_factor",
    "implied",
    "is_pseudonym",
    "median",
    "messenger_ref",
    "add_months",
    "next_period",
    "parse_audience",
    "parse_period",
    "parse_timestamp",
    "period_bounds",
    "period_label",
    "period_of",
    "period_range",
    "period_start",
    "pseudonymise",
    "shift_signals",
    "touch_order",
    "trend_signals",
    "visitor_ref",
]
