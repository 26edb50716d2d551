"""Faust's Kafka transport (aiokafka), with one fix: a partition nobody committed is read from its start.

After a rebalance Faust drops the records it had fetched but not yet handed to an agent, then seeks every
partition back to its committed offset. aiokafka's ``seek_to_committed`` seeks only when that offset is
above 0, so a partition with no commit yet (a young topic, or the first record ever sent to a partition)
stays where the fetcher left it: past the records just dropped. Those records were never processed, and
no worker would read them again. Seen here as a webhook arriving during a rebalance that started no run,
and as a stage request cut off by a SIGKILLed worker that the next owner never ran (``faults/``).

The fix: after Faust's seek, partitions of the topics agents read that have no committed offset go back
to their beginning, as ``auto_offset_reset="earliest"`` means. Nothing there was committed, so reading it
again is the at-least-once delivery every agent is written for. Changelog topics are left alone: Faust's
table recovery positions those itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[Any, int] = await super().seek_to_committed()
        changelogs = self.consumer.app.tables.changelog_topics
        never = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        if never:
            # Not aiokafka's seek_to_beginning: it waits for the new positions, which paused partitions
            # (all stream partitions, while tables recover) do not get until they resume, and Faust also
            # seeks here while recovery reads changelogs through this very consumer: a deadlock.
            await self.call_thread(_rewind, self._ensure_consumer(), never)
            self.log.info("reading %d uncommitted partition(s) from their beginning", len(never))
        return committed


async def _rewind(consumer: Any, partitions: list[Any]) -> None:
    """Seek ``partitions`` to their first offsets (in the consumer's own thread)."""
    for tp, offset in (await consumer.beginning_offsets(partitions)).items():
        consumer.seek(tp, offset)


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer


class App(faust.App):
    """``faust.App`` whose consumer uses the transport above."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
