"""Short unique identifiers for rows that travel in URLs and Kafka records.

An id is 12 URL-safe characters: a random 7-character prefix drawn once per process
(42 bits from ``secrets``, drawn again in a forked child and whenever the counter runs
out) followed by a 5-character counter (2**30 ids per prefix). Ids are unique across
processes and restarts as long as two processes never draw the same prefix (about one
chance in 10**7 for a thousand process starts), and cost no system call each. They are
not secrets: every id that reaches a URL is inside a signed token (tokens.py).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets
import threading

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_COUNTER_CHARS = 5
_COUNTER_LIMIT = 64**_COUNTER_CHARS
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 12 bits → 2 characters
_lock = threading.Lock()
_state: tuple[str, itertools.count[int]] = ("", itertools.count())


def _draw() -> None:
    """A fresh random prefix and a counter from zero (one tuple: swapped atomically)."""
    global _state
    _state = ("".join(secrets.choice(_ALPHABET) for _ in range(7)), itertools.count())


def new_token() -> str:
    """22 URL-safe characters (128 bits) nobody can guess: a keyed BLAKE2b of a counter
    under a per-process random key (no system call per token, unlike ``secrets``)."""
    key, counter = _token_state
    digest = hashlib.blake2b(next(counter).to_bytes(8, "big"), key=key, digest_size=16)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _draw_token_key() -> None:
    global _token_state
    _token_state = (secrets.token_bytes(32), itertools.count())


def new_id() -> str:
    """12 URL-safe characters, unique (see the module doc)."""
    state = _state
    n = next(state[1])  # atomic under the GIL: no two callers get the same n
    if n >= _COUNTER_LIMIT:
        with _lock:
            if _state is state:
                _draw()
        return new_id()
    return state[0] + _ALPHABET[n >> 24] + _PAIRS[(n >> 12) & 4095] + _PAIRS[n & 4095]


_token_state: tuple[bytes, itertools.count[int]] = (b"", itertools.count())
_draw()
_draw_token_key()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_draw)
    os.register_at_fork(after_in_child=_draw_token_key)
