"""Which role may use which API route: the one route table of the roles (issue 16).

``services.auth.require_token``, the dependency of every ``/api/v1`` route, asks
``refusal`` after it has found who is asking. A route is in the outreach area unless
this table puts it in the admin area; the rules per area are
``services.domain.roles.refusal``: an analyst changes nothing, only an admin reads or
changes the admin area.
"""

from __future__ import annotations

from services.domain.roles import Area, Role, refusal

ANY = "*"
#: (method or ANY, route template) of the admin area: accounts, service tokens, the
#: stage map (reading it is for everyone: the dashboard explains the stages with it).
ADMIN_ROUTES = frozenset(
    {
        (ANY, "/api/v1/tokens"),
        (ANY, "/api/v1/tokens/{token_id}"),
        (ANY, "/api/v1/accounts"),
        (ANY, "/api/v1/accounts/{email}"),
        ("PUT", "/api/v1/stage-map"),
    }
)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Route prefixes that show people (addresses, names, a person's history, who is in an
#: audience): staff work,
#: never the analyst's, whose counts of 1 to 10 are withheld for the same reason.
PEOPLE_PREFIXES = ("/api/v1/contacts", "/api/v1/outbox", "/api/v1/audiences")


def area_of(method: str, template: str) -> Area:
    if (ANY, template) in ADMIN_ROUTES or (method, template) in ADMIN_ROUTES:
        return Area.ADMIN
    if template.startswith(PEOPLE_PREFIXES):
        return Area.PEOPLE
    return Area.OUTREACH


def refusal_for(role: Role, method: str, template: str) -> str:
    """Why ``role`` may not call ``method template``; "" when it may."""
    return refusal(role, area_of(method, template), changes=method in CHANGES)


def may(role: Role | str, method: str, template: str) -> bool:
    """Whether ``role`` may call ``method template``: the console renders a button or a
    form only when this says yes (the API refuses the rest with 403 anyway)."""
    return not refusal_for(Role(role), method, template)


#: Routes whose body is a file, not JSON: (method, route template) → the media types
#: they take (``services.auth.json_only`` refuses any other body with 415).
UPLOADS: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/contacts/import"): frozenset({"text/csv", "multipart/form-data"}),
}


def body_types(method: str, template: str) -> frozenset[str]:
    """The media types other than JSON that ``method template`` takes as its body."""
    return UPLOADS.get((method, template), frozenset())
