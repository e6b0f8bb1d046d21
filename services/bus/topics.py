"""Topic names (fixed by CONTRACT.md) and their creation."""

from __future__ import annotations

ENGAGEMENT = "winwin.engagement.v1"
TOUCHES = "winwin.touches.v1"
CREDITS = "winwin.credits.v1"
DEADLETTER = "winwin.deadletter.v1"
ALL = (ENGAGEMENT, TOUCHES, CREDITS, DEADLETTER)

#: The schema of the records inside each topic's envelopes (schemas/ package).
RECORD_SCHEMA = {ENGAGEMENT: "engagement.v1", TOUCHES: "touch.v1", CREDITS: "credit.v1"}


def physical(name: str, prefix: str) -> str:
    """The topic's name on the cluster: the contract's name, behind an optional prefix
    (``WINWIN_TOPIC_PREFIX``) so that tests or tenants can share one cluster."""
    return f"{prefix}{name}"


def logical(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name
