"""The kafka-python producer (the only place, with admin, that imports kafka-python)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from services.bus import topics
from services.config import Settings

log = logging.getLogger(__name__)


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by producer and admin (SASL/TLS for
    managed Kafka are passed through from settings)."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        opts["sasl_mechanism"] = settings.kafka_sasl_mechanism
        opts["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            opts["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile:
        opts["ssl_cafile"] = settings.kafka_ssl_cafile
    return opts


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """Idempotent, acks=all: a retried send never duplicates within a partition."""
    opts = client_options(settings) | {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "compression_type": None,
        "max_request_size": 4 * 1024 * 1024,
        "retries": 2**31 - 1,
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": 60_000,
    }
    return KafkaProducer(**(opts | overrides))


def close_producer(producer: KafkaProducer, timeout: float = 5.0) -> None:
    """Close ``producer`` and end its network thread, even when its broker is gone.

    kafka-python's ``close()`` first flushes and raises when records are still unsent
    after ``timeout``, leaving the thread to retry a dead broker for good (one leaked,
    busy thread per outage). The records it drops are still in the outbox."""
    try:
        producer.close(timeout=timeout)
    except KafkaTimeoutError:
        sender = producer._sender  # no public API closes without the flush
        sender.force_close()  # fails the pending records instead of sending them
        sender.join(timeout)
        with contextlib.suppress(Exception):
            producer.close(timeout=0)  # nothing left to flush: releases the rest


def ensure_topics(settings: Settings, partitions: int | None = None) -> dict[str, int]:
    """Create the engine's topics if missing; return each (logical) topic's partition count."""
    admin = KafkaAdminClient(**client_options(settings), request_timeout_ms=15_000)
    try:
        n = partitions or settings.partitions
        names = {topics.physical(t, settings.topic_prefix): t for t in topics.ALL}
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=t, num_partitions=n, replication_factor=1)
            for t in names
            if t not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        meta = admin.describe_topics(list(names))
        return {names[m.get("name", m.get("topic"))]: len(m["partitions"]) for m in meta}
    finally:
        admin.close()


def kafka_reachable(settings: Settings, timeout_ms: int = 3000) -> bool:
    try:
        # kafka-python 3 waits bootstrap_timeout_ms (30 s) for a dead broker: /readyz would lag
        bootstrap = (
            {"bootstrap_timeout_ms": timeout_ms}
            if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG
            else {}
        )
        admin = KafkaAdminClient(
            **client_options(settings), request_timeout_ms=timeout_ms, **bootstrap
        )
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    try:
        admin.list_topics()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()
