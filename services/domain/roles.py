"""Who may do what: the staff roles and the areas of the API they may read or change.

* ``admin``: everything, and alone the admin area (accounts, service tokens, the stage
  map, settings);
* ``staff``: all outreach work (contacts, resources, templates, audiences, campaigns,
  toolkits, journeys);
* ``analyst``: reads dashboards, reports and exports (counts, small ones withheld), never
  a person's details, and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A staff role, as stored on accounts, service tokens and sessions."""

    ADMIN = "admin"
    STAFF = "staff"
    ANALYST = "analyst"


class Area(StrEnum):
    """What part of the work a route belongs to."""

    ADMIN = "admin"
    OUTREACH = "outreach"
    #: Who the people are: contacts, their exports, the outbox of messages to them.
    PEOPLE = "people"


class ActorKind(StrEnum):
    """Who made a change, as the audit log says: a named account (by email), a service
    token (by its id; the API token is ``api-token``) or the ``winwin`` command line."""

    ACCOUNT = "account"
    TOKEN = "token"
    CLI = "cli"


def refusal(role: Role, area: Area, changes: bool) -> str:
    """Why ``role`` may not read (``changes`` False) or change this area; "" when it may."""
    if role is Role.ADMIN:
        return ""
    if area is Area.ADMIN:
        return f"only an admin may {'change' if changes else 'see'} this; you are {role}"
    if role is Role.ANALYST and area is Area.PEOPLE:
        return "an analyst sees counts, never a person's details; ask staff or an admin"
    if changes and role is Role.ANALYST:
        return "an analyst reads and changes nothing; ask staff or an admin"
    return ""


def parse_role(value: str) -> Role:
    """The role named ``value`` (any case); ValueError naming the choices otherwise."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = "|".join(r.value for r in Role)
        raise ValueError(f"role {value!r} is not one of {choices}") from None
