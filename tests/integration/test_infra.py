"""The test infrastructure itself: real Kafka and real PostgreSQL behave as the suite assumes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from sqlalchemy import create_engine, text

from tests.kafka_cluster import KafkaBroker

N_MESSAGES = 100


def _new_topic(bootstrap: str, partitions: int = 2) -> str:
    name = f"infra-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-infra")
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until metadata shows both partitions
            desc = admin.describe_topics([name])
            if desc and len(desc[0].get("partitions") or []) == partitions:
                break
            time.sleep(0.1)
    finally:
        admin.close()
    return name


def _produce(bootstrap: str, topic: str, n: int, tag: str) -> set[str]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [
            producer.send(topic, key=f"k{i % 7}".encode(), value=f"{tag}-{i}".encode())
            for i in range(n)
        ]
        producer.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futures]
    finally:
        producer.close(timeout=10)
    assert {m.partition for m in metas} == {0, 1}, "keys should spread over both partitions"
    return {f"{tag}-{i}" for i in range(n)}


async def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"infra-group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(r.value.decode() for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


@pytest.mark.kafka
def test_kafka_python_produces_and_aiokafka_group_consumes(kafka_bootstrap: str) -> None:
    topic = _new_topic(kafka_bootstrap)
    sent = _produce(kafka_bootstrap, topic, N_MESSAGES, "m")
    got = asyncio.run(_consume_all(kafka_bootstrap, topic, N_MESSAGES))
    assert sorted(got) == sorted(sent)


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_restart_keeps_messages(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _new_topic(bootstrap)
    sent = _produce(bootstrap, topic, 20, "before")

    kafka_broker.stop_process()
    assert not kafka_broker.is_running()
    kafka_broker.start_process()
    assert kafka_broker.bootstrap == bootstrap  # same ports after the restart

    sent |= _produce(bootstrap, topic, 20, "after")
    got = asyncio.run(_consume_all(bootstrap, topic, len(sent)))
    assert sorted(got) == sorted(sent)


@pytest.mark.postgres
def test_postgres_roundtrip_with_on_conflict(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.dialect.name == "postgresql"
            conn.execute(text("CREATE TABLE infra_t (id text PRIMARY KEY, n int NOT NULL)"))
            ins = text("INSERT INTO infra_t (id, n) VALUES (:id, :n) ON CONFLICT (id) DO NOTHING")
            first = conn.execute(ins, [{"id": "a", "n": 1}, {"id": "b", "n": 2}])
            assert first.rowcount == 2
            again = conn.execute(ins, {"id": "a", "n": 99})
            assert again.rowcount == 0
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, n FROM infra_t ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2)]
    finally:
        engine.dispose()


def test_database_url_is_fresh_and_usable(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE fresh_t (id integer PRIMARY KEY)"))  # fails if reused
            conn.execute(text("INSERT INTO fresh_t (id) VALUES (1)"))
            assert conn.execute(text("SELECT count(*) FROM fresh_t")).scalar() == 1
    finally:
        engine.dispose()
