"""Settings: one pydantic-settings class, prefix ``WINWIN_`` (CONTRACT.md, Configuration).

Secrets are ``SecretStr``. In dev mode (the default for the embedded setup) a secret key
and an API token are generated once into ``.winwin/`` so that restarts keep pseudonyms and
tokens stable; outside dev mode placeholder or missing secrets are refused.
"""

from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "changethis", "dev"}
PLACEHOLDER_PARTS = ("changeme", "change-me", "changethis", "replace-with", "replace-me")
MIN_SECRET_LENGTH = 32
#: Shannon estimate over the secret's characters: a random 32-character hex secret has
#: ~116 typically and below 90 about twice in a million (86.5 the lowest of 2,000,000 drawn:
#: a floor of 90 refused one CI run's random secret); one repeated character has 0, "ab" x 16
#: has 32. Short patterns repeated are refused by their period, whatever their variety.
MIN_SECRET_BITS = 72
#: Rows a hand or a mind walks along: a secret mostly made of steps to a neighbour in one
#: of them (abcdef..., 0123..., qwerty...) is guessable whatever its variety. A random
#: hex secret has 1 such step in 8 (at most 15 of 31 in 100,000 tries): 3/4 refuses none.
WALKS: tuple[str, ...] = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
)
WALKS += ("zxcvbnm",)
NEIGHBOURS = {w[i : i + 2] for w in WALKS for i in range(len(w) - 1)}
NEIGHBOURS |= {pair[::-1] for pair in NEIGHBOURS}
STATE_DIR = Path(os.environ.get("WINWIN_STATE_DIR", ".winwin"))


class Settings(BaseSettings):
    """Every knob of WINWIN, read from the environment (``WINWIN_*``)."""

    model_config = SettingsConfigDict(env_prefix="WINWIN_", extra="ignore")

    env: str = Field(default="dev", description="dev | production")
    #: in the state folder, also when it is absolute (``sqlite:////srv/winwin/winwin.db``)
    database_url: str = (
        f"sqlite:///{'' if STATE_DIR.is_absolute() else './'}{STATE_DIR.as_posix()}/winwin.db"
    )
    kafka_bootstrap: str = ""
    kafka_partitions: int | None = None
    kafka_ephemeral: bool = Field(
        default=False,
        description="the broker keeps nothing across its restarts (`winwin up` sets it for the "
        "embedded one): the outbox keeps each record until the sinks stored it, and the relay "
        "sends the kept records again when it starts",
    )
    worker_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="`winwin up` restarts a stream worker whose heartbeat (every 2 s) is older "
        "than this, once it has been seen (a frozen or wedged worker)",
    )
    sink_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="a stream worker SIGKILLs its SQL-writing child when a batch's write takes "
        "longer than this (frozen, or stuck on a lock), and writes the batch again in a new one; "
        "a batch is written in 1 to 3 s, so 60 s is never a live write",
    )
    relay_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="`winwin up` restarts a relay whose heartbeat (a file in the state folder, "
        "every second) is older than this, and the embedded broker when it has not answered a "
        "Kafka request (probed every second) for this long; /readyz says 503 while an outbox "
        "row waits longer",
    )
    click_commit_wait_seconds: float = Field(
        default=2.0,
        gt=0,
        description="a redirect or open pixel answers once its click is committed, or after "
        "this long if SQL is slow (a SQLite writer busy with a large batch, a failover): the "
        "person is not kept waiting once the click is in the click spool (the state folder), "
        "from which it is stored when SQL answers or at the API's next start",
    )
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr("")
    api_token: SecretStr = SecretStr("")
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str = ""
    sendgrid_webhook_max_age_hours: float = Field(
        default=72.0,
        gt=0,
        description="accept a validly signed Event Webhook post up to this old (SendGrid "
        "retries failed posts for 24 h; replays are harmless: events dedupe by sg_event_id)",
    )
    inbound_parse_secret: SecretStr = Field(
        default=SecretStr(""),
        description="when set, POST /webhooks/sendgrid/inbound needs it: as the password of the "
        "Inbound Parse URL's basic auth (https://parse:SECRET@host/...) or as ?key=SECRET",
    )
    sendgrid_from: str = "outreach@example.org"
    link_allowed_hosts: str = ""
    attribution_window_days: int = 30
    timezone: str = "UTC"
    frequency_cap: str = "3/7d"
    global_holdout_share: float = Field(
        default=0.0, ge=0.0, le=0.5,
        description="share of people kept out of all outreach (cumulative lift); 0: none",
    )  # fmt: skip
    email_max_per_second: float = Field(
        default=0.0, description="email throttle: at most this many emails a second (0: no limit)"
    )
    sendgrid_reconcile_after_seconds: float = Field(
        default=600.0,
        description="after a crash, wait this long before asking SendGrid's Email Activity "
        "which emails of an unfinished request it accepted",
    )
    reply_domain: str = Field(
        default="",
        description="replies go to reply+<token>@<reply_domain> (Inbound Parse); empty: off",
    )
    social_webhook_url: str = Field(
        default="", description="publish social posts to this URL (signed)"
    )
    social_webhook_secret: SecretStr = SecretStr("")
    render_timeout_seconds: float = Field(
        default=2.0, gt=0, description="a template render taking longer fails (preview, save, send)"
    )
    render_max_bytes: int = Field(
        default=1_000_000, gt=0, description="a rendered message over this many bytes fails"
    )
    render_workers: int = Field(
        default=2, ge=1, description="processes that render templates, per role that renders"
    )
    topic_prefix: str = Field(
        default="",
        description="prepended to every topic and the consumer group (tests, shared clusters)",
    )
    session_idle_minutes: float = Field(
        default=120.0, gt=0, description="a dashboard sign-in ends after this long unused"
    )
    session_max_hours: float = Field(
        default=12.0, gt=0, description="a dashboard sign-in ends this long after it began"
    )
    min_cell: int = Field(
        default=11,
        ge=0,
        description="shared outputs never show a count of people from 1 to this minus 1 "
        "(CMS cell size suppression policy); 0 turns suppression off",
    )
    retention_months_raw: int = Field(
        default=24,
        ge=1,
        description="raw event properties and reply bodies older than this many months are "
        "cleared (stage facts and credits stay)",
    )
    erasure_inflight_days: int = Field(
        default=7,
        ge=1,
        description="for this many days after an erasure, events still in flight under the "
        "person's old pseudonym are stored under the erased (random) one; then the map goes",
    )
    max_extra_windows: int = Field(
        default=4,
        ge=1,
        description="attribution windows other than the stream's whose credits are kept; "
        "computing one more drops the least recently read",
    )
    state_dir: Path = STATE_DIR

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _webhook_key(cls, v: str) -> str:
        if v.strip() and (problem := webhook_key_problem(v.strip())):
            raise ValueError(
                f"WINWIN_SENDGRID_WEBHOOK_PUBLIC_KEY is not SendGrid's verification public key "
                f"({problem}): copy it from Settings > Mail Settings > Signed Event Webhook"
            )
        return v.strip()

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.social_webhook_url and not self.social_webhook_secret.get_secret_value():
            raise ValueError(
                "WINWIN_SOCIAL_WEBHOOK_SECRET is required when WINWIN_SOCIAL_WEBHOOK_URL is set"
            )
        if self.env == "dev":
            if not self.secret_key.get_secret_value():
                self.secret_key = SecretStr(_dev_secret(self.state_dir, "secret_key"))
            if not self.api_token.get_secret_value():
                self.api_token = SecretStr(_dev_secret(self.state_dir, "api_token"))
            return self
        for name in ("secret_key", "api_token"):
            if weakness := weak_secret(getattr(self, name).get_secret_value()):
                raise ValueError(
                    f"WINWIN_{name.upper()} must be set to a real secret outside dev mode: "
                    f"{weakness} (make one with: openssl rand -hex 32)"
                )
        if self.secret_key.get_secret_value() == self.api_token.get_secret_value():
            raise ValueError(
                "WINWIN_SECRET_KEY and WINWIN_API_TOKEN must differ outside dev mode: whoever "
                "holds the API token could otherwise forge link tokens and pseudonyms"
            )
        return self

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def partitions(self) -> int:
        if self.kafka_partitions:
            return self.kafka_partitions
        return 2 if self.embedded_kafka else 8

    @property
    def allowed_hosts(self) -> set[str]:
        return {h.strip().lower() for h in self.link_allowed_hosts.split(",") if h.strip()}

    @property
    def sendgrid_enabled(self) -> bool:
        return bool(self.sendgrid_api_key.get_secret_value())


def webhook_key_problem(public_key_b64: str) -> str:
    """Why a base64 DER key (as SendGrid shows it) is no ECDSA public key; empty when it
    is one. Read as the webhook check reads it (sendgrid's ``EventWebhook``: PEM armour)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    pem = f"-----BEGIN PUBLIC KEY-----\n{public_key_b64}\n-----END PUBLIC KEY-----"
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"not a public key: {type(exc).__name__}"
    return "" if isinstance(key, ec.EllipticCurvePublicKey) else "not an EC key"


def weak_secret(value: str) -> str:
    """Why ``value`` is too weak to be a production secret; empty when it will do."""
    lowered = value.lower()
    if lowered in PLACEHOLDER_SECRETS or any(p in lowered for p in PLACEHOLDER_PARTS):
        return "it is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{len(value)} characters, at least {MIN_SECRET_LENGTH} needed"
    period = next(p for p in range(1, len(value) + 1) if value[p:] == value[:-p] or p == len(value))
    if 2 * period <= len(value):  # "password" x 4, "a1b2c3d4" x 4
        return f"a short pattern repeated ({period} characters, {len(value) / period:.1f} times)"
    counts = Counter(value)
    bits = sum(n * math.log2(len(value) / n) for n in counts.values())
    if bits < MIN_SECRET_BITS:  # e.g. one character repeated, or a short pattern
        return f"too little variety ({len(counts)} distinct characters, ~{bits:.0f} bits)"
    steps = sum(lowered[i : i + 2] in NEIGHBOURS for i in range(len(lowered) - 1))
    if 4 * steps >= 3 * (len(value) - 1):
        return f"a keyboard or alphabet walk ({steps} of {len(value) - 1} steps to a neighbour)"
    return ""


def _dev_secret(state_dir: Path, name: str) -> str:
    """Read or create a per-checkout dev secret, so restarts keep pseudonyms stable."""
    path = state_dir / name
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the secrets
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def dev_secret(state_dir: Path, name: str) -> str:
    """A per-checkout dev secret (read or created in ``state_dir``), e.g. the dev admin's
    password."""
    return _dev_secret(state_dir, name)
