"""The rules a new campaign must meet before it is stored (as a ``draft``).

Each returns the problem as ``"field: reason"`` (what the API answers with 422), or None.
The platforms a campaign posts to by default are :func:`services.domain.social.
campaign_platforms`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["resources_problem", "template_problem", "unsubscribe_group_problem"]


def unsubscribe_group_problem(channel: str, group: int | None) -> str | None:
    """Only an email campaign names a SendGrid unsubscribe group."""
    if group is not None and channel != "email":
        return "unsubscribe_group: only email campaigns have one"
    return None


def template_problem(channel: str, template_id: str, template_channel: str | None) -> str | None:
    """The template must exist (``template_channel`` is None otherwise) and serve the
    campaign's channel."""
    if template_channel is None:
        return f"template_id: unknown template {template_id!r}"
    if template_channel != channel:
        return f"template_id: a {template_channel} template cannot serve a {channel} campaign"
    return None


def resources_problem(chosen: Sequence[str], known: Collection[str]) -> str | None:
    """Every resource the campaign offers must be in the library."""
    if missing := [r for r in chosen if r not in known]:
        return f"resources: unknown resource ids {missing}"
    return None
