"""Topic names (fixed by CONTRACT.md) and their creation."""

from __future__ import annotations

ENGAGEMENT = "winwin.engagement.v1"
TOUCHES = "winwin.touches.v1"
CREDITS = "winwin.credits.v1"
DEADLETTER = "winwin.deadletter.v1"
ALL = (ENGAGEMENT, TOUCHES, CREDITS, DEADLETTER)

#: The schema of the records inside each topic's envelopes (schemas/ package).
RECORD_SCHEMA = {ENGAGEMENT: "engagement.v1", TOUCHES: "touch.v1", CREDITS: "credit.v1"}
#: Identity changes (a visitor merged into a contact, or that undone) ride on the
#: engagement topic, keyed by the contact's pseudonym: in order with that person's
#: events. They are told apart by their ``kind``, a field no engagement record has.
IDENTITY_SCHEMA = "identity.v1"
IDENTITY_KINDS = ("identity.merged", "identity.unmerged")


def is_identity(record: object) -> bool:
    """An identity change record (not an engagement event), by its ``kind`` field:
    ``identity.…`` (its schema then says which kinds are valid). Touches have a ``kind``
    too (``email``, ``link``...), which never starts so."""
    if type(record) is not dict:
        return False
    kind = record.get("kind")
    return isinstance(kind, str) and kind.startswith("identity.")


def schema_of(topic: str, record: object) -> str:
    """The schema of one record of ``topic`` (KeyError for a topic without records)."""
    if topic == ENGAGEMENT and is_identity(record):
        return IDENTITY_SCHEMA
    return RECORD_SCHEMA[topic]


def physical(name: str, prefix: str) -> str:
    """The topic's name on the cluster: the contract's name, behind an optional prefix
    (``WINWIN_TOPIC_PREFIX``) so that tests or tenants can share one cluster."""
    return f"{prefix}{name}"


def logical(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name
