"""Rules for social posts: platforms, length limits, tracked-link parameters, Instagram.

Pure functions, no I/O. A post is rendered once per platform from the campaign's
template (with ``platform`` in the context); these rules then count it the way the
platform does, shape it for the platform, and say why it would be refused.

* X counts every link as 23 characters (t.co), whatever its real length, and counts
  most characters outside Latin/common punctuation (CJK, emoji) as 2 (twitter-text v3
  weighting). The limit is 280.
* Instagram captions have no clickable links, so links in a caption are replaced by
  "link in bio" and the tracked link is handed over for the profile's bio (or a
  link-in-bio landing page); see :func:`shape_for_platform`.
* LinkedIn, Facebook and Instagram have generous character limits, checked too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "LINK_IN_BIO",
    "LIMITS",
    "PLATFORMS",
    "X_LINK_LENGTH",
    "campaign_platforms",
    "delivery_due",
    "PostProblem",
    "ShapedPost",
    "find_links",
    "next_delivery",
    "post_length",
    "problem",
    "shape_for_platform",
    "with_utm",
    "x_length",
]

PLATFORMS: tuple[str, ...] = ("x", "linkedin", "facebook", "instagram")
#: Characters a post may have, as each platform counts them.
LIMITS: dict[str, int] = {"x": 280, "linkedin": 3000, "facebook": 63206, "instagram": 2200}
X_LINK_LENGTH = 23
INSTAGRAM_MAX_HASHTAGS = 30
LINK_IN_BIO = "link in bio"
#: Deliveries to a publisher: retried with doubling delays, then given up.
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
LABELS = {"x": "X", "linkedin": "LinkedIn", "facebook": "Facebook", "instagram": "Instagram"}

# A link is an http(s) URL up to whitespace; trailing sentence punctuation is not part of it.
_LINK = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
# twitter-text v3: code points in these ranges weigh 1, all others 2.
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
# Parts of an emoji sequence that X counts within the emoji (joiners, variation, skin tone).
_EMOJI_PARTS = {0x200D, 0xFE0E, 0xFE0F, 0x20E3, *range(0x1F3FB, 0x1F400)}


class PostProblem(ValueError):
    """A post that a platform would refuse; the message says which and why."""


@dataclass(frozen=True)
class ShapedPost:
    """A post as it goes to a platform: its text and the links it carries.

    ``bio_links`` are links that could not stay in the text (Instagram) and belong in
    the profile's bio or link-in-bio page instead.
    """

    platform: str
    text: str
    inline_links: tuple[str, ...]
    bio_links: tuple[str, ...]


def campaign_platforms(channel: str, chosen: Sequence[str] | None) -> list[str]:
    """The platforms a new campaign posts to: the ones chosen, else every platform for a
    social campaign and none for another channel."""
    return list(chosen or (PLATFORMS if channel == "social" else ()))


def find_links(text: str) -> list[str]:
    """The http(s) links in ``text``, in order, without trailing punctuation."""
    return [m.rstrip(_TRAILING) for m in _LINK.findall(text)]


def x_length(text: str) -> int:
    """Length of ``text`` as X counts it: links 23 each, heavy characters 2."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    for part in _split_links(text):
        if part.startswith(("http://", "https://", "HTTP://", "HTTPS://")):
            total += X_LINK_LENGTH
            continue
        for ch in part:
            point = ord(ch)
            if point in _EMOJI_PARTS:
                continue
            light = any(lo <= point <= hi for lo, hi in _X_LIGHT)
            total += 1 if light else 2
    return total


def post_length(platform: str, text: str) -> int:
    """Length as ``platform`` counts it (X: weighted; others: Unicode characters)."""
    if platform == "x":
        return x_length(text)
    return len(unicodedata.normalize("NFC", text))


def problem(platform: str, text: str) -> str | None:
    """Why ``platform`` would refuse this (already shaped) post, or None."""
    if platform not in LIMITS:
        return f"platforms: unknown platform {platform!r} (known: {', '.join(PLATFORMS)})"
    label = LABELS[platform]
    if not text.strip():
        return f"{platform}: the {label} post renders empty"
    length, limit = post_length(platform, text), LIMITS[platform]
    if length > limit:
        how = f", each link counted as {X_LINK_LENGTH}" if platform == "x" else ""
        return f"{platform}: the {label} post is {length} characters{how}; {label} allows {limit}"
    if platform == "instagram" and len(_HASHTAG.findall(text)) > INSTAGRAM_MAX_HASHTAGS:
        return f"instagram: more than {INSTAGRAM_MAX_HASHTAGS} hashtags; Instagram allows {INSTAGRAM_MAX_HASHTAGS}"
    return None


def shape_for_platform(platform: str, text: str) -> ShapedPost:
    """Shape a rendered post for ``platform``; raise PostProblem if it would be refused.

    Instagram: every link in the caption becomes "link in bio" (or disappears when the
    caption already says so) and moves to ``bio_links``.
    """
    text = _tidy(text)
    links = tuple(dict.fromkeys(find_links(text)))
    if platform == "instagram" and links:
        says_bio = LINK_IN_BIO in _LINK.sub("", text).lower()
        text = _tidy(_replace_links(text, "" if says_bio else LINK_IN_BIO))
        shaped = ShapedPost(platform, text, (), links)
    else:
        shaped = ShapedPost(platform, text, links, ())
    reason = problem(platform, shaped.text)
    if reason:
        raise PostProblem(reason)
    return shaped


def with_utm(url: str, source: str, campaign: str, medium: str = "social") -> str:
    """``url`` with utm_source/medium/campaign set (replacing any given), rest kept."""
    parts = urlsplit(url)
    utm = {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in utm]
    return urlunsplit(parts._replace(query=urlencode([*query, *utm.items()])))


def delivery_due(record: Mapping[str, Any], now: datetime) -> bool:
    """Whether a post's delivery record (or ``{}`` before any) asks for an attempt now."""
    if record.get("ok") or record.get("final"):
        return False
    next_at = record.get("next_at")
    return not next_at or datetime.fromisoformat(str(next_at)) <= now


def next_delivery(
    previous: Mapping[str, Any], ok: bool, retry: bool, detail: str, now: datetime
) -> dict[str, Any]:
    """The delivery record after an attempt: final when delivered, refused for good,
    or after MAX_ATTEMPTS; otherwise the next try after a doubling delay (≤ LAST_RETRY)."""
    attempts = int(previous.get("attempts", 0)) + 1
    final = ok or not retry or attempts >= MAX_ATTEMPTS
    delay = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)
    return {
        "ok": ok,
        "final": final,
        "attempts": attempts,
        "detail": detail,
        "at": now.isoformat(),
        "next_at": None if final else (now + delay).isoformat(),
    }


def _split_links(text: str) -> list[str]:
    """``text`` cut into alternating plain parts and links (links without trailing punctuation)."""
    parts: list[str] = []
    last = 0
    for match in _LINK.finditer(text):
        link = match.group().rstrip(_TRAILING)
        parts.append(text[last : match.start()])
        parts.append(link)
        last = match.start() + len(link)
    parts.append(text[last:])
    return [p for p in parts if p]


def _replace_links(text: str, replacement: str) -> str:
    return "".join(
        replacement if p.lower().startswith(("http://", "https://")) else p
        for p in _split_links(text)
    )


def _tidy(text: str) -> str:
    """Trim each line's trailing spaces, runs of spaces, and blank lines at the ends."""
    lines = [re.sub(r"(?<=\S)[ \t]{2,}", " ", line).rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
