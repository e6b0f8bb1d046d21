"""Staff passwords: argon2id (argon2-cffi), the one room of that library.

A hash carries its own parameters; a hash made with older parameters is made again at
the next good sign-in (``needs_rehash``). An unknown email is checked against a dummy
hash, so the time taken does not say whether an account exists.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: The hasher of new passwords: argon2-cffi's defaults (RFC 9106, low memory profile).
#: Read at each call, so its parameters can be changed in one place (tests use cheaper
#: ones; stored hashes made with others are then renewed at sign-in).
HASHER = PasswordHasher()
MIN_LENGTH = 12


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or HASHER).hash(password)


def verify(stored: str | None, password: str, hasher: PasswordHasher | None = None) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash, the same work is
    done against a dummy one and the answer is False."""
    hasher = hasher or HASHER
    try:
        return hasher.verify(stored or _dummy(hasher), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, hasher: PasswordHasher | None = None) -> bool:
    return (hasher or HASHER).check_needs_rehash(stored)


def generated() -> str:
    """A new random password (128 bits), for ``--generate`` and the dev admin."""
    return secrets.token_urlsafe(16)


def weakness(password: str) -> str:
    """Why ``password`` may not be used; "" when it may."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    return ""


@lru_cache(maxsize=4)
def _dummy(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))
