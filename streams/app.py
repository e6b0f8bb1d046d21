"""The Faust app (the only package that imports Faust).

One agent consumes both person-partitioned topics (engagement and touches) in envelopes,
batches them with ``take_events`` and hands each batch to the SQL attribution sink in a
worker thread. Offsets are committed after the batch is written (``take_events`` acks
on resume), so a crash re-delivers at most the uncommitted batches, which the sink
ignores (idempotent keys): at-least-once transport, exact counts.
"""

from __future__ import annotations

import faust

from services.config import Settings


def create_app(settings: Settings, app_id: str = "winwin-attribution") -> faust.App:
    brokers = [f"kafka://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    return faust.App(
        app_id,
        broker=brokers,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=16_384,
        producer_acks=-1,
        autodiscover=False,
        broker_credentials=_credentials(settings),
    )


def _credentials(settings: Settings):  # type: ignore[no-untyped-def]
    if not settings.kafka_sasl_mechanism:
        return None
    import ssl

    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if "SSL" in settings.kafka_security_protocol else None
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username or "",
        password=password,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ctx,
    )
