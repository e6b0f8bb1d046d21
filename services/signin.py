"""Signing in to the staff pages: a named account (email and password) or, for
machines and development, the API token. Failed attempts are limited per email and per
client address (in this API process's memory: with several API processes behind a load
balancer, each keeps its own count). A successful sign-in is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services import accounts, audit
from services.accounts import Actor
from services.auth import API_TOKEN_ACTOR, token_ok
from services.domain.attempts import AttemptLimiter
from services.domain.roles import ActorKind

if TYPE_CHECKING:
    from services.application import Container

#: Failed attempts allowed per minute for one email, and for one client address.
PER_EMAIL, PER_CLIENT = 5, 20


@dataclass
class SignInLimits:
    """The failed-attempt counters of one API process."""

    by_email: AttemptLimiter = field(default_factory=lambda: AttemptLimiter(PER_EMAIL))
    by_client: AttemptLimiter = field(default_factory=lambda: AttemptLimiter(PER_CLIENT))


@dataclass(frozen=True)
class Outcome:
    """Who signed in (None when refused), the HTTP status and what to tell the person."""

    actor: Actor | None
    status: int
    message: str = ""
    retry_after: int = 0


def attempt(
    c: Container, limits: SignInLimits, client: str, email: str, password: str, token: str
) -> Outcome:
    """Checks one sign-in: 429 when the email or client tried too often, 401 when wrong."""
    now, email = c.now(), email.strip().lower()
    counters = [(limits.by_client, client)] + ([(limits.by_email, email)] if email else [])
    wait = max(limiter.wait(key, now) for limiter, key in counters)
    if wait:
        return Outcome(None, 429, f"Too many sign-in attempts. Try again in {wait} seconds.", wait)
    actor: Actor | None = None
    if email:
        role = accounts.check_password(c, email, password)
        actor = Actor(ActorKind.ACCOUNT, email, role) if role else None
    elif token.strip() and token_ok(c.settings, token.strip()):
        actor = API_TOKEN_ACTOR
    if actor is None:
        for limiter, key in counters:
            limiter.failed(key, now)
        wrong = (
            "That email and password do not match an account."
            if email
            else "That token is not right."
        )
        return Outcome(None, 401, wrong)
    audit.record(c, actor, "sign_in", "session", actor.id)
    return Outcome(actor, 303)
