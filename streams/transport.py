"""Faust's Kafka transport (aiokafka), with an idempotent producer and rebalances that lose no record.

The producer is idempotent (Faust enables that only for exactly-once processing): without it a batch the
broker wrote but could not acknowledge before a restart is written again when retried, and the run log
got the same record twice.

After a rebalance Faust drops the records it had fetched but not yet handed to an agent, then seeks every
partition back to its committed offset. aiokafka's ``seek_to_committed`` seeks only when that offset is
above 0, so a partition with no commit yet (a young topic, or the first record ever sent to a partition)
stays where the fetcher left it: past the records just dropped. Those records were never processed, and
no worker would read them again. Seen here as a webhook arriving during a rebalance that started no run,
and as a stage request cut off by a SIGKILLed worker that the next owner never ran (``faults/``).

The fix: after Faust's seek, partitions of the topics agents read that have no committed offset go back
to their beginning, as ``auto_offset_reset="earliest"`` means. Nothing there was committed, so reading it
again is the at-least-once delivery every agent is written for. The same drop hits changelog partitions
while a table recovers, which then waits for ever for the records it lost; those go back to the last
record recovery applied. And a rebalance no longer waits for ever for a record no agent can still take
(``_Consumer.wait_empty``).

The seek itself raced with Faust's fetch loop. Table recovery resumes the flow of records to read the
changelogs, then resumes the stream partitions, seeks them back to their committed offsets, and clears
the agents' queues (``flow_control.resume``): during the seek the fetch loop went on handing out records
into those queues and counting them as read, so the records the clear dropped were not handed out again
(a record below its partition's read offset counts as read). The partition's commit then stops at the
first of them for good, as Faust commits only up to the first record not acknowledged (faust-streaming
#596), or goes past them when the fetch loop took the skip for a gap in the log. Seen in the soak as 12,
17 and 40 webhooks stored but never matched after a worker came back. Now the flow stops before the seek
and waits for the fetch loop to let go of the record it is handing out; Faust resumes it after the clear
(``_Consumer.perform_seek``). ``streams.stall_watch`` is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any, Protocol, cast

import faust
from faust.tables.manager import TableManager
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, AppT, Message, TransportT


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        app = self.consumer.app
        changelogs = app.tables.changelog_topics
        never = [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]
        # Changelog partitions are read by table recovery, which Faust does not seek back either: records
        # dropped at a rebalance would leave recovery waiting for them for ever ("No event received for
        # active tp"). Back to the last record applied, as recovery itself seeks (a record read twice is
        # applied twice, to the same value).
        recovery = cast(TableManager, app.tables).recovery  # the TableManager's; not in its declared type
        applied = {
            **{tp: recovery.active_offsets[tp] for tp in recovery.active_tps},
            **{tp: recovery.standby_offsets[tp] for tp in recovery.standby_tps},
        }
        # Faust holds None for a changelog partition whose start recovery has not worked out yet.
        reread = {tp: max(applied[tp] or 0, 0) for tp in committed if tp in applied}
        if never or reread:
            # Not aiokafka's seek_to_beginning: it waits for the new positions, which paused partitions
            # (all stream partitions, while tables recover) do not get until they resume, and Faust also
            # seeks here while recovery reads changelogs through this very consumer: a deadlock.
            await self.call_thread(_rewind, self._ensure_consumer(), never, reread)
        if never:
            self.log.info("reading %d uncommitted partition(s) from their beginning", len(never))
        return committed


class _Seeking(Protocol):
    """What ``_rewind`` uses of aiokafka's ``AIOKafkaConsumer`` (aiokafka has no types)."""

    def beginning_offsets(self, partitions: Iterable[TP]) -> Awaitable[Mapping[TP, int]]: ...

    def seek(self, partition: TP, offset: int) -> None: ...


async def _rewind(consumer: _Seeking, never: list[TP], reread: Mapping[TP, int]) -> None:
    """Seek ``never`` to their first offsets and ``reread`` to theirs (in the consumer's own thread)."""
    if never:
        for tp, offset in (await consumer.beginning_offsets(never)).items():
            consumer.seek(tp, offset)
    for tp, offset in reread.items():
        consumer.seek(tp, offset)


class _Consumer(driver.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._let_go = asyncio.Event()  # clear while the fetch loop is handing a record out
        self._let_go.set()

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's, noting while the fetch loop hands a record out: it asks for the next one only after it
        handed this one to the agents' queues (or gave up on it when the flow stopped) and counted it as
        read (``Consumer._drain_messages``)."""
        async for tp, message in super().getmany(timeout):
            self._let_go.clear()
            try:
                yield tp, message
            finally:
                self._let_go.set()

    async def perform_seek(self) -> None:
        """Faust's seek of every partition back to its committed offset (and read offset with it), done
        with the flow stopped and no record in the fetch loop's hands.

        Otherwise the fetch loop goes on handing out records during the seek and counts them as read
        after it; the clear of the agents' queues that follows drops them, and the records fetched again
        from the committed offset are dropped as read already. The flow stays stopped: Faust's recovery
        resumes it once it cleared the queues, and its fetch loop seeks here only when it is stopped.
        """
        self.stop_flow()
        # A record being handed out when the flow stops is let go at once (the hand-out waits for either).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._let_go.wait(), LET_GO_S)
        await super().perform_seek()

    async def reread(self) -> None:
        """Read every partition again from its committed offset, as the end of a rebalance does (the
        stall watch's way out, ``streams.stall_watch``): seek, clear the agents' queues, resume."""
        generation = self.app.consumer_generation_id
        await self.perform_seek()
        if self.app.rebalancing or self.app.consumer_generation_id != generation:
            return  # a rebalance began meanwhile: its recovery seeks again and resumes the flow
        self.app.flow_control.resume()
        self.resume_flow()

    async def wait_empty(self) -> None:
        """Faust's wait for the records agents took to be acknowledged before a rebalance goes on, ended
        once no agent is working on anything.

        A run-log record goes to two agents (projection and reporting). When a rebalance begins after one
        of them took it and before the other did, the other's stream is already suspended: the record is
        never acknowledged and Faust waited for ever ("wait_empty: Waiting for tasks"; seen in 2 of 6
        soaks). With every agent idle nothing can acknowledge it any more, so the wait ends; the record
        is not committed and is read again by whoever gets the partition.
        """
        idle = 0
        while not self.should_stop and self._unacked_messages:
            await self.commit()
            if not self._unacked_messages:
                break
            idle = 0 if _agents_busy(self.app) else idle + 1
            if idle >= IDLE_CHECKS:
                self.log.warning(
                    "no agent is working on the %d unacknowledged record(s) left; they are read again "
                    "after the rebalance",
                    len(self._unacked_messages),
                )
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()


IDLE_CHECKS = 5  # seconds, about: how long every agent must be idle before unacknowledged records are let go
LET_GO_S = 1.0  # at most; the fetch loop lets go of a record within a few turns of the event loop


def _agents_busy(app: AppT) -> bool:
    """Whether an agent is processing a record now (its stream has a current event)."""
    return any(
        actor.stream.current_event is not None for agent in app.agents.values() for actor in agent._actors
    )


class _Producer(driver.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        # Idempotent: a batch retried after a broker restart is written once, not twice. Faust enables it
        # only with exactly-once processing.
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class _Transport(driver.Transport):
    Consumer = _Consumer
    Producer = _Producer


class App(faust.App):
    """``faust.App`` whose consumer and producer use the transport above."""

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return _Transport(self.conf.broker_producer, self)
