"""streams/app.py patches Faust's private API in one place (``_short_fetch_wait``): the
worker's consumer waits FETCH_MAX_WAIT_MS on a fetch, not Faust's hard-coded 1500 ms.
This test builds a real Faust app's worker consumer (nothing connects: an aiokafka
consumer opens its sockets on ``start()``), so a Faust or aiokafka upgrade that renames
what the patch touches fails here, not as a slower pipeline in production."""

from __future__ import annotations

import asyncio

import faust
from faust.transport.drivers import aiokafka as driver

from streams.app import FETCH_MAX_WAIT_MS, _short_fetch_wait


async def _worker_consumer_wait() -> int:
    app = faust.App(
        "winwin-test-fetch-wait",
        broker="kafka://127.0.0.1:9",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
    )
    thread = app.consumer._thread
    assert isinstance(thread, driver.AIOKafkaConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        return int(consumer._fetch_max_wait_ms)
    finally:
        await consumer.stop()


def test_the_worker_consumer_waits_briefly_on_a_fetch() -> None:
    _short_fetch_wait()
    _short_fetch_wait()  # once per process: a second call changes nothing
    assert asyncio.run(_worker_consumer_wait()) == FETCH_MAX_WAIT_MS < 1500
