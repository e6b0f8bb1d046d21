"""The Faust app (the only package that imports Faust).

One agent consumes both person-partitioned topics (engagement and touches) in envelopes,
batches them with ``take_events`` and hands each batch to the SQL attribution sink in a
child process (streams/writer.py). Offsets are committed after the batch is written and
its credits published (streams/agents.py holds each message until then), so a crash
re-delivers at most the uncommitted batches, which the sink ignores (idempotent keys):
at-least-once transport, exact counts.
"""

from __future__ import annotations

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as driver

from services.config import Settings

#: How long a fetch may wait on the broker for new data. Faust hard-codes 1500 ms; a
#: broker that does not answer a waiting fetch as soon as data arrives (the embedded
#: Tansu does not) then adds ~0.4 s p50 to every event's latency (`winwin bench
#: latency`). Real Kafka answers early anyway, so a short wait only adds idle polls.
FETCH_MAX_WAIT_MS = 50


def create_app(settings: Settings, app_id: str = "winwin-attribution") -> faust.App:
    _short_fetch_wait()
    brokers = [f"kafka://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=brokers,
        store="memory://",
        datadir=str(settings.state_dir / "{conf.id}-data"),  # not the cwd: read-only in containers
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=1_024,  # prefetched envelopes: bounds memory on a backlog
        producer_acks=-1,
        autodiscover=False,
        broker_credentials=_credentials(settings),
    )


def _short_fetch_wait() -> None:
    """Make Faust's worker consumer use :data:`FETCH_MAX_WAIT_MS` (once per process).

    Faust has no setting for it, so this is the one place that patches Faust's private
    API: ``AIOKafkaConsumerThread._create_worker_consumer`` and aiokafka's
    ``AIOKafkaConsumer._fetch_max_wait_ms``. tests/unit/streams/test_app.py fails when
    an upgrade of either renames them."""
    thread = driver.AIOKafkaConsumerThread
    create = thread._create_worker_consumer
    if create.__name__ == "_create_worker_consumer_briefly":  # patched already
        return

    def _create_worker_consumer_briefly(
        self: driver.AIOKafkaConsumerThread, transport: driver.Transport
    ) -> AIOKafkaConsumer:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by consumer.start()
        return consumer

    thread._create_worker_consumer = _create_worker_consumer_briefly  # type: ignore[method-assign]


def _credentials(settings: Settings):  # type: ignore[no-untyped-def]
    import ssl

    ctx = (
        ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        if "SSL" in settings.kafka_security_protocol
        else None
    )
    if not settings.kafka_sasl_mechanism:
        return faust.SSLCredentials(ctx) if ctx else None  # TLS without SASL
    password = (
        settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    )
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username or "",
        password=password,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ctx,
    )
