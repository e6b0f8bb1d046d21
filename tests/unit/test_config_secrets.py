"""Production mode refuses weak secrets: short, placeholder, low-variety, or the secret key
equal to the API token (whoever holds the token could forge link tokens and pseudonyms).
Dev mode generates its own and is not checked."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.config import Settings, weak_secret
from tests.stack import GOOD_SECRET, GOOD_TOKEN


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("aaaaaaaaaaaaaaaa", "16 characters, at least 32 needed"),
        ("a" * 64, "a short pattern repeated (1 characters, 64.0 times)"),
        ("ab" * 20, "a short pattern repeated (2 characters, 20.0 times)"),
        ("password" * 4, "a short pattern repeated (8 characters, 4.0 times)"),
        ("a1b2c3d4" * 4 + "a1b", "a short pattern repeated (8 characters, 4.4 times)"),
        (
            "aaaabbbbaaabbbabababbbbaaaabbbba",
            "too little variety (2 distinct characters, ~32 bits)",
        ),
        ("replace-with-openssl-rand-hex-32", "it is a placeholder"),
        ("CHANGE-ME-openssl-rand-hex-32-xxxxx", "it is a placeholder"),
        ("abcdefghijklmnopqrstuvwxyz012345", "a keyboard or alphabet walk (30 of 31 steps"),
        ("0123456789abcdef0123456789abcdef", "a short pattern repeated (16 characters, 2.0 times)"),
        ("0123456789abcdefghijklmnopqrstuv", "a keyboard or alphabet walk (30 of 31 steps"),
        ("qwertyuiopasdfghjklzxcvbnm123456", "a keyboard or alphabet walk (28 of 31 steps"),
        ("ZYXWVUTSRQPONMLKJIHGFEDCBA987654", "a keyboard or alphabet walk (30 of 31 steps"),
    ],
)
@pytest.mark.parametrize("field", ["secret_key", "api_token"])
def test_a_weak_secret_is_refused_with_the_reason(
    tmp_path: Path, field: str, weak: str, reason: str
) -> None:
    values = {"secret_key": GOOD_SECRET, "api_token": GOOD_TOKEN} | {field: weak}
    with pytest.raises(ValidationError) as refused:
        Settings(env="production", state_dir=tmp_path, **values)
    message = refused.value.errors()[0]["msg"]  # what `winwin` prints
    assert f"WINWIN_{field.upper()} must be set to a real secret" in message
    assert reason in message and weak not in message  # the reason, never the secret


def test_the_secret_key_may_not_equal_the_api_token(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="WINWIN_SECRET_KEY and WINWIN_API_TOKEN must differ"):
        Settings(
            env="production", state_dir=tmp_path, secret_key=GOOD_SECRET, api_token=GOOD_SECRET
        )


def test_generated_secrets_are_accepted(tmp_path: Path) -> None:
    for _ in range(200):  # what the README tells operators to run, and Python's own
        Settings(env="production", state_dir=tmp_path, secret_key=secrets.token_hex(32),
                 api_token=secrets.token_urlsafe(32))  # fmt: skip
    Settings(env="production", state_dir=tmp_path, secret_key=secrets.token_hex(16),
             api_token=secrets.token_hex(24))  # fmt: skip


def test_dev_mode_is_not_checked(tmp_path: Path) -> None:
    Settings(env="dev", state_dir=tmp_path, secret_key="s" * 32, api_token="s" * 32)


def test_random_hex_secrets_are_never_taken_for_a_walk() -> None:
    """One step in eight of a random hex secret goes to a keyboard or alphabet neighbour;
    the walk check must refuse none of 10,000 (nor of Python's URL-safe ones)."""
    for _ in range(10_000):
        assert weak_secret(secrets.token_hex(16)) == ""
        assert weak_secret(secrets.token_urlsafe(32)) == ""
