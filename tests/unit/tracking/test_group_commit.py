"""A click is answered only once it is in SQL (red team round 4: a redirect answered 302
before the Gatherer stored its click, so a SIGKILL lost answered clicks). The clicks of
one moment share one transaction (group commit); a failed store still lets the person
through, the click held in memory and stored on the next try. The Gatherer is driven
step by step here (``step``), not by its thread."""

from __future__ import annotations

import asyncio
from typing import Any

from services.tracking.group_commit import Gatherer, HandOver


class FlakyIngest:
    """Stands in for Ingest.record: keeps each committed batch; fails while ``down``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.down = False

    def record(self, records: list[dict[str, Any]]) -> None:
        if self.down:
            raise ConnectionError("the database is down")
        self.batches.append([r["event_id"] for r in records])

    replay = record  # the click spool's records, stored again


def click(n: int) -> dict[str, Any]:
    return {"event_id": f"click:{n}", "type": "link.click"}


async def handed_over() -> None:
    """Two passes of the loop: the handlers run, then their hand-over to the Gatherer."""
    for _ in range(2):
        await asyncio.sleep(0)


def test_clicks_wait_for_the_commit_of_their_one_shared_transaction() -> None:
    ingest = FlakyIngest()
    gatherer = Gatherer(ingest, max_delay=0)  # type: ignore[arg-type]
    hand_over = HandOver(gatherer)

    async def scenario() -> list[bool]:
        clicks = [asyncio.ensure_future(hand_over.store(click(n))) for n in range(3)]
        await handed_over()
        assert not any(c.done() for c in clicks), "answered before stored"
        assert ingest.batches == []
        gatherer.step()
        return list(await asyncio.gather(*clicks))

    assert asyncio.run(scenario()) == [True, True, True]
    assert ingest.batches == [["click:0", "click:1", "click:2"]]


def test_a_failed_store_still_answers_and_the_click_is_stored_on_the_next_try() -> None:
    ingest = FlakyIngest()
    gatherer = Gatherer(ingest, max_delay=0, retry_after=0)  # type: ignore[arg-type]
    hand_over = HandOver(gatherer)
    merged: list[list[list[str]]] = []

    async def scenario() -> tuple[bool, bool]:
        ingest.down = True
        first = asyncio.ensure_future(hand_over.store(click(1)))
        await handed_over()
        gatherer.later(lambda: merged.append(list(ingest.batches)))  # e.g. a merge after it
        gatherer.step()
        answered = await first  # not stored, answered all the same
        ingest.down = False
        second = asyncio.ensure_future(hand_over.store(click(2)))
        await handed_over()
        gatherer.step()
        return answered, await second

    assert asyncio.run(scenario()) == (False, True)
    assert ingest.batches == [["click:1", "click:2"]]
    assert merged == [[["click:1", "click:2"]]], "a task runs only after what came before it"


def test_a_slow_commit_answers_after_max_wait_and_the_click_is_stored_later() -> None:
    """SQL slower than ``max_wait`` (a SQLite writer busy with a large batch): the person
    is not kept waiting; the click stays queued and is committed when SQL answers."""
    ingest = FlakyIngest()
    gatherer = Gatherer(ingest, max_delay=0)  # type: ignore[arg-type]
    hand_over = HandOver(gatherer, max_wait=0.05)

    async def scenario() -> bool:
        return await hand_over.store(click(1))  # nobody steps the Gatherer meanwhile

    assert asyncio.run(scenario()) is False
    assert ingest.batches == []
    gatherer.step()
    assert ingest.batches == [["click:1"]]


class MemorySpool:
    """Stands in for the click spool (services/tracking/spool.py): keeps each append."""

    def __init__(self) -> None:
        self.appends: list[list[str]] = []
        self.pending = False

    def append(self, records: list[dict[str, Any]]) -> None:
        self.appends.append([r["event_id"] for r in records])
        self.pending = True

    def store(self, store: Any) -> bool:
        store([{"event_id": i} for batch in self.appends for i in batch])
        self.appends, self.pending = [], False
        return True

    def close(self) -> None:
        pass


def test_a_failed_store_spools_the_batch_once_before_answering_then_stores_the_spool() -> None:
    """A click answered after a failed store is durably queued: its batch is in the
    spool (one append, so one fsync, for all) before the receipts answer; once SQL
    answers, the spool is stored too (the ledger drops the duplicates)."""
    ingest, spool = FlakyIngest(), MemorySpool()
    gatherer = Gatherer(ingest, max_delay=0, retry_after=0, spool=spool)  # type: ignore[arg-type]
    hand_over = HandOver(gatherer)

    async def scenario() -> list[bool]:
        ingest.down = True
        clicks = [asyncio.ensure_future(hand_over.store(click(n))) for n in range(3)]
        await handed_over()
        gatherer.step()
        answered = list(await asyncio.gather(*clicks))
        assert spool.appends == [["click:0", "click:1", "click:2"]], "answered, not spooled"
        ingest.down = False
        gatherer.step()
        return answered

    assert asyncio.run(scenario()) == [False, False, False]
    assert ingest.batches == [["click:0", "click:1", "click:2"]] * 2
    assert spool.appends == [] and not spool.pending
