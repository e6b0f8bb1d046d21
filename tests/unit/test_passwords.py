"""Staff passwords: argon2id, renewed when the parameters change, the same work for an
unknown account."""

from __future__ import annotations

from argon2 import PasswordHasher

from services import passwords

FAST = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def test_a_password_is_stored_as_an_argon2id_hash_and_checked():
    stored = passwords.hash_password("correct horse battery", FAST)
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert passwords.verify(stored, "correct horse battery", FAST)
    assert not passwords.verify(stored, "correct horse batterY", FAST)
    assert not passwords.verify("not a hash", "correct horse battery", FAST)


def test_an_unknown_account_is_checked_against_a_dummy_hash_and_refused(monkeypatch):
    seen: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hashed: str, password: str) -> bool:
        seen.append(hashed)
        return real(self, hashed, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    assert not passwords.verify(None, "anything at all", FAST)
    assert len(seen) == 1 and seen[0].startswith("$argon2id$")  # the same work was done


def test_a_hash_made_with_older_parameters_needs_a_rehash():
    stronger = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=1)
    old = passwords.hash_password("correct horse battery", FAST)
    assert passwords.needs_rehash(old, stronger)
    assert not passwords.needs_rehash(passwords.hash_password("x" * 12, stronger), stronger)


def test_short_passwords_are_refused_and_generated_ones_are_long():
    assert passwords.weakness("short")
    assert passwords.weakness(passwords.generated()) == ""
