"""The seek that ends a rebalance hands every record from the committed offset on to the agents.

Faust's fetch loop (``Consumer._drain_messages``, run here for real) and the seek it races with, on a
partition faked as a list of records: no broker. A rebalance in the faults soak lost records this way
(``streams/transport.py``, ``_Consumer.perform_seek``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.transport import App

EVENTS = TP("t.events", 3)
COMMITTED, END = 5, 21  # the group committed offset 5; the partition holds records up to offset 20


class _Partition:
    """One partition as aiokafka's fetcher serves it: records from its position on, and a seek back."""

    def __init__(self) -> None:
        self.position = COMMITTED

    async def getmany(self, active_partitions: set[TP], timeout: float) -> Mapping[TP, list[Any]]:
        if EVENTS in active_partitions and self.position < END:
            batch = [_record(offset) for offset in range(self.position, END)]
            self.position = END
            return {EVENTS: batch}
        await asyncio.sleep(0.001)
        return {}

    async def seek_to_committed(self) -> Mapping[TP, int]:
        self.position = COMMITTED
        return {EVENTS: COMMITTED}


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(EVENTS.topic, EVENTS.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@pytest.fixture
async def app() -> AsyncIterator[App]:
    app = App("t", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    yield app
    app.consumer._thread.thread_loop.close()


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


async def test_records_handed_out_while_recovery_seeks_are_handed_out_again(app, monkeypatch):
    """Recovery resumes a stream partition and seeks it back to its committed offset while the fetch loop
    still hands out a batch fetched before; then clears the agents' queues (``flow_control.resume``).
    Every record from the committed offset on reaches the agents after that clear: none is dropped as
    "already read" (in the soak, 12 webhooks were never matched)."""
    consumer = app.consumer
    partition = _Partition()
    monkeypatch.setattr(consumer, "_getmany", partition.getmany)
    monkeypatch.setattr(consumer._thread, "seek_to_committed", partition.seek_to_committed)
    monkeypatch.setattr(consumer, "highwater", lambda tp: END)
    queue: list[int] = []  # the agent's queue
    queue_full = asyncio.Event()  # while clear, the queue takes nothing more (an agent busy a while)

    async def deliver(message: Any) -> None:
        queue.append(message.offset)
        if message.offset == 10:
            await queue_full.wait()

    consumer.callback = deliver
    consumer._set_active_tps({EVENTS})  # the stream partition, resumed by recovery
    consumer.resume_flow()  # flow already resumed for the changelogs recovery read
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    try:
        await _until(lambda: queue and queue[-1] == 10)  # the batch is being handed out
        # Recovery.on_recovery_completed: seek, clear the agents' queues, resume the flow.
        await consumer.perform_seek()
        queue.clear()  # flow_control.resume() clears the agents' queues
        consumer.resume_flow()
        queue_full.set()
        await _until(lambda: len(queue) >= END - COMMITTED, timeout=2.0)
    except TimeoutError:
        pass
    finally:
        fetcher._stopped.set()
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
    assert sorted(set(queue)) == list(range(COMMITTED, END))


async def test_reread_hands_out_every_record_again_from_the_committed_offset(app, monkeypatch):
    """The stall watch's way out: records read past a hole are read again from the committed offset."""
    consumer = app.consumer
    partition = _Partition()
    monkeypatch.setattr(consumer, "_getmany", partition.getmany)
    monkeypatch.setattr(consumer._thread, "seek_to_committed", partition.seek_to_committed)
    monkeypatch.setattr(consumer, "highwater", lambda tp: END)
    handed: list[int] = []

    async def deliver(message: Any) -> None:
        handed.append(message.offset)

    consumer.callback = deliver
    consumer._set_active_tps({EVENTS})
    consumer.resume_flow()
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    try:
        await _until(lambda: len(handed) == END - COMMITTED)
        await consumer.reread()
        assert consumer.flow_active
        await _until(lambda: len(handed) == 2 * (END - COMMITTED))
    finally:
        fetcher._stopped.set()
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
    assert handed == 2 * list(range(COMMITTED, END))


async def test_reread_leaves_the_flow_to_a_rebalance_begun_meanwhile(app, monkeypatch):
    """A rebalance under way resumes the flow itself once it recovered: reread leaves it stopped."""
    consumer = app.consumer
    partition = _Partition()

    async def seek_while_a_rebalance_begins() -> Mapping[TP, int]:
        app.rebalancing = True
        return await partition.seek_to_committed()

    monkeypatch.setattr(consumer._thread, "seek_to_committed", seek_while_a_rebalance_begins)
    consumer.resume_flow()
    await consumer.reread()
    assert not consumer.flow_active
