"""What ``streams.transport`` assumes of the pinned Faust and aiokafka internals it overrides.

Each test fails when a new faust-streaming or aiokafka stops behaving as the overrides expect: then read
``streams/transport.py`` again against the new sources before changing the pin. No broker: nothing here
connects (aiokafka connects only on ``start()``), and aiokafka's coordinator and fetcher are replaced by
fakes exposing just what the code under test calls.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Mapping, MutableSet
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.exceptions import ConsumerNotStarted
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message
from mode.threads import MethodQueue, QueueServiceThread
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams.transport import App, _agents_busy, _Consumer, _ConsumerThread, _Producer, _Transport

STREAM_TP = TopicPartition("hamster.runs", 0)


@pytest.fixture
async def app() -> AsyncIterator[App]:
    """Hamster's ``App`` on a broker nobody listens on; the consumer thread's own loop is closed after."""
    app = App("t", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    yield app
    if app._consumer is not None:
        app.consumer._thread.thread_loop.close()  # made by mode's ServiceThread, closed only by its run


class _RecordingFetcher:
    """aiokafka's Fetcher, reduced to the seek ``seek_to_committed`` makes."""

    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}

    def seek_to(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


class _CommittedCoordinator:
    """aiokafka's GroupCoordinator, reduced to answering which offsets the group committed."""

    def __init__(self, committed: Mapping[TopicPartition, int]) -> None:
        self.committed = committed

    async def fetch_committed_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Any]:
        return {tp: OffsetAndMetadata(self.committed[tp], "") for tp in partitions if tp in self.committed}


async def _resolved(value: Any) -> Any:
    """``value``, as an awaitable (what the fakes' coroutine methods return)."""
    return value


# 1. The seek after a rebalance ---------------------------------------------------------------------------


async def test_faust_seek_to_committed_returns_aiokafkas_mapping():
    """Faust's thread seek_to_committed runs aiokafka's in the consumer thread and returns its mapping."""
    committed = {STREAM_TP: None}
    ran_in_thread = []

    class Thread:
        async def call_thread(self, fun: Any, *args: Any) -> Any:
            ran_in_thread.append(fun.__name__)
            return await fun(*args)

        def _ensure_consumer(self) -> Any:
            return SimpleNamespace(seek_to_committed=lambda: _resolved(committed))

    seek_to_committed = driver.AIOKafkaConsumerThread.seek_to_committed
    assert inspect.iscoroutinefunction(seek_to_committed)
    assert await seek_to_committed(Thread()) is committed
    assert ran_in_thread == ["<lambda>"]


async def test_faust_seeks_after_a_rebalance_through_the_consumer_thread(app, monkeypatch):
    """Faust's perform_seek (when a rebalance ends) goes through the consumer thread's seek_to_committed."""
    seen = []

    async def seek_to_committed() -> Mapping[TP, int]:
        seen.append("seek")
        return {STREAM_TP: 7}

    monkeypatch.setattr(app.consumer._thread, "seek_to_committed", seek_to_committed)
    await app.consumer.perform_seek()
    assert seen == ["seek"]
    assert app.consumer._committed_offset[STREAM_TP] == 7


async def test_aiokafka_seek_to_committed_skips_partitions_with_no_commit_or_zero():
    """aiokafka seeks only partitions committed above 0; the rest stay where the fetcher left them."""
    never, expired, zero, read = (TopicPartition("hamster.runs", p) for p in range(4))
    consumer = AIOKafkaConsumer(group_id="g", bootstrap_servers="127.0.0.1:1")
    consumer._subscription.assign_from_user({never, expired, zero, read})
    consumer._coordinator = _CommittedCoordinator({expired: -1, zero: 0, read: 7})
    consumer._fetcher = fetcher = _RecordingFetcher()
    try:
        committed = await consumer.seek_to_committed()
    finally:
        consumer._coordinator = consumer._fetcher = None
        await consumer.stop()
    # The override picks its partitions with ``not offset``: it must match exactly those left unsought.
    assert committed == {never: None, expired: None, zero: 0, read: 7}
    assert fetcher.seeks == {read: 7}


async def test_aiokafka_seek_sets_the_position_at_once_and_refuses_negative_offsets():
    """aiokafka's seek does not wait (seek_to_beginning does) and refuses offsets below 0 or None."""
    assert not inspect.iscoroutinefunction(AIOKafkaConsumer.seek)
    assert inspect.iscoroutinefunction(AIOKafkaConsumer.seek_to_beginning)
    assert inspect.iscoroutinefunction(AIOKafkaConsumer.beginning_offsets)
    consumer = AIOKafkaConsumer(group_id="g", bootstrap_servers="127.0.0.1:1")
    try:
        for offset in (-1, None):
            with pytest.raises(ValueError, match="positive integer"):
                consumer.seek(STREAM_TP, offset)
    finally:
        await consumer.stop()


async def test_call_thread_runs_a_coroutine_function_to_its_end():
    """The consumer thread's call_thread awaits a coroutine function (``_rewind``) and returns its result."""
    assert driver.AIOKafkaConsumerThread.call_thread is QueueServiceThread.call_thread
    loop = asyncio.get_running_loop()
    queue = MethodQueue(loop=loop)
    thread = SimpleNamespace(method_queue=queue, parent_loop=loop)
    finished = []

    async def rewind(consumer: str, offset: int) -> str:
        await asyncio.sleep(0)
        finished.append(offset)
        return consumer

    await queue.start()
    try:
        assert await QueueServiceThread.call_thread(thread, rewind, "consumer", 3) == "consumer"
    finally:
        await queue.stop()
    assert finished == [3]


async def test_ensure_consumer_hands_back_the_aiokafka_consumer(app):
    """The consumer thread's _ensure_consumer returns its aiokafka consumer, and refuses before it starts."""
    thread = app.consumer._thread
    with pytest.raises(ConsumerNotStarted):
        thread._ensure_consumer()
    thread._consumer = aiokafka_consumer = object()
    assert thread._ensure_consumer() is aiokafka_consumer


# 2. Table recovery -------------------------------------------------------------------------------------


async def test_changelog_topics_are_the_topic_names(app):
    """app.tables.changelog_topics is the set of changelog topic names, compared with a partition's topic."""
    app.Table("counts", default=int)
    assert app.tables.changelog_topics == {"t-counts-changelog"}


async def test_table_recovery_keeps_its_partitions_in_sets_and_offsets_in_counters(app):
    """The TableManager's recovery has active/standby partition sets and Counters of the offsets applied."""
    table = app.Table("counts", default=int)
    active, standby = TP("t-counts-changelog", 0), TP("t-counts-changelog", 1)
    recovery = app.tables.recovery
    assert isinstance(recovery, Recovery)
    recovery.add_active(table, active)
    recovery.add_standby(table, standby)
    assert recovery.active_tps == {active}
    assert recovery.standby_tps == {standby}
    assert isinstance(recovery.active_offsets, Counter)
    assert isinstance(recovery.standby_offsets, Counter)
    assert active in recovery.active_offsets
    assert standby in recovery.standby_offsets


async def test_recovery_offsets_are_ints_once_recovery_reads_where_to_start(app):
    """Recovery turns a partition's "nothing applied" (None, for memory tables) into -1 before it reads."""
    table = app.Table("counts", default=int)
    fresh, applied = TP("t-counts-changelog", 0), TP("t-counts-changelog", 1)
    recovery = app.tables.recovery
    recovery.add_active(table, fresh)
    recovery.add_active(table, applied)
    assert recovery.active_offsets[fresh] is None  # the override's max(offset, 0) would fail on it
    recovery.active_offsets[applied] = 41
    earliest = SimpleNamespace(earliest_offsets=lambda *tps: _resolved(dict.fromkeys(tps)))
    await recovery._build_offsets(earliest, recovery.active_tps, recovery.active_offsets, "active")
    assert recovery.active_offsets == {fresh: -1, applied: 41}


async def test_recovery_seeks_a_changelog_back_to_the_last_offset_applied(app):
    """Recovery seeks each changelog to the last offset it applied (-1 to 0), as the override does."""
    fresh, applied = TP("t-counts-changelog", 0), TP("t-counts-changelog", 1)
    sought = []
    consumer = SimpleNamespace(seek_wait=lambda offsets: _resolved(sought.append(dict(offsets))))
    recovery = app.tables.recovery
    await recovery._seek_offsets(consumer, {fresh, applied}, Counter({fresh: -1, applied: 41}), "active")
    assert sought == [{fresh: 0, applied: 41}]


# 2. The wait for acknowledgements at a rebalance -------------------------------------------------------


async def test_rebalance_waits_for_acknowledgements_through_consumer_wait_empty(app):
    """At a rebalance Faust waits for the records agents took through consumer.wait_empty."""
    waited = []
    consumer = SimpleNamespace(wait_empty=lambda: _resolved(waited.append("wait_empty")))
    assert app.conf.stream_wait_empty
    await app._consumer_wait_empty(consumer, app.log)
    assert waited == ["wait_empty"]


async def test_consumer_has_the_internals_wait_empty_uses(app):
    """Faust's Consumer keeps unacked records in a set it cleans of acked ones, and can wait for an ack."""
    consumer = app.consumer
    assert isinstance(consumer._unacked_messages, MutableSet)
    assert consumer.unacked is consumer._unacked_messages  # where streams add the records they take
    acked, pending = (Message("hamster.runs", 0, offset, 0.0, 0, None, None, b"", None) for offset in (1, 2))
    acked.acked = True
    consumer._unacked_messages.update({acked, pending})
    consumer._clean_unacked_messages()
    assert set(consumer._unacked_messages) == {pending}
    assert inspect.iscoroutinefunction(consumer._wait_for_ack)
    assert "timeout" in inspect.signature(consumer._wait_for_ack).parameters
    assert inspect.iscoroutinefunction(consumer.commit_and_end_transactions)
    assert not inspect.signature(consumer.commit_and_end_transactions).parameters
    assert inspect.iscoroutinefunction(driver.Consumer.wait_empty)
    assert consumer.should_stop is False


async def test_an_agent_is_busy_exactly_while_its_stream_has_a_current_event(app):
    """An agent's ``_actors`` hold its stream, whose current_event is set only while a record is handled."""
    busy_while_handling = []

    @app.agent()
    async def work(stream):
        async for _ in stream:
            busy_while_handling.append(_agents_busy(running))

    async with work.test_context() as agent:
        running = SimpleNamespace(agents={"work": agent})
        await agent.put(b"record")
        assert busy_while_handling == [True]
        assert not _agents_busy(running)


# 2. The seek's race with the fetch loop (_Consumer.perform_seek, reread) ---------------------------------


def _code(function: Any) -> list[str]:
    """The lines of ``function``'s source, comments and blank lines left out."""
    lines = (line.split("#")[0].strip() for line in inspect.getsource(function).splitlines())
    return [line for line in lines if line]


def _index(code: list[str], text: str) -> int:
    return next(i for i, line in enumerate(code) if text in line)


@pytest.mark.parametrize("step", [Recovery.on_recovery_completed, Recovery._resume_streams])
def test_recovery_seeks_then_clears_the_agents_queues_then_resumes_the_flow(step):
    """After a rebalance recovery seeks, then clears the queues (flow_control.resume), then resumes the
    consumer's flow: perform_seek may leave the flow stopped, and the records it stops are cleared."""
    code = _code(step)
    seek = _index(code, "consumer.perform_seek()")
    clear = _index(code, "flow_control.resume()")
    resume = _index(code, "consumer.resume_flow()")
    assert seek < clear < resume


async def test_resuming_flow_control_clears_the_queues_it_manages():
    """flow_control.resume() empties every queue made with clear_on_resume, even with the flow resumed
    already: the records in them are dropped (what made the seek's race lose records)."""
    flow = FlowControlEvent(initially_suspended=False)
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait(1)
    flow.resume()
    assert queue.empty()


def test_the_fetch_loop_counts_a_record_read_once_handed_out_or_let_go_and_drops_records_below():
    """Faust's fetch loop iterates ``self.getmany`` (ours), hands each record to the agents' queues until
    the flow stops, then sets its read offset, and drops records below a partition's read offset."""
    code = _code(driver.Consumer._drain_messages)
    assert "getmany = self.getmany" in code
    hand_out = _index(code, "await self.wait_first(")
    assert code[hand_out + 1] == "callback(message), self.suspend_flow.wait()"
    assert "set_read_offset(tp, offset)" in code[hand_out + 2 : hand_out + 4]
    assert "if r_offset is None or offset >= r_offset:" in code
    getmany = _code(driver.Consumer.getmany)
    assert _index(getmany, "if not self.flow_active:") < _index(getmany, "yield tp, to_message(tp, record)")


async def test_stop_flow_and_resume_flow_switch_flow_active_and_the_suspend_event(app):
    """stop_flow sets the event a record being handed out also waits for; resume_flow undoes it."""
    consumer = app.consumer
    consumer.resume_flow()
    assert consumer.flow_active and not consumer.suspend_flow.is_set()
    consumer.stop_flow()
    assert not consumer.flow_active and consumer.suspend_flow.is_set()


async def test_the_app_says_when_a_rebalance_is_under_way(app):
    """app.rebalancing is set when a rebalance starts (aiokafka's revoke callback calls this first)."""
    assert app.rebalancing is False
    app.on_rebalance_start()
    assert app.rebalancing is True
    assert "thread.app.on_rebalance_start()" in _code(driver.ConsumerRebalanceListener.on_partitions_revoked)


async def test_commits_are_kept_in_committed_offset(app, monkeypatch):
    """``streams.stall_watch`` reads a partition's committed offset in the consumer's _committed_offset,
    which Faust updates on each commit."""
    consumer = app.consumer
    committed: list[Mapping[TP, int]] = []

    async def commit(offsets: Mapping[TP, int]) -> bool:
        committed.append(offsets)
        return True

    monkeypatch.setattr(consumer, "assignment", lambda: {STREAM_TP})
    monkeypatch.setattr(consumer, "_commit", commit)
    await consumer._commit_offsets({STREAM_TP: 208})
    assert committed == [{STREAM_TP: 208}]
    assert consumer._committed_offset[STREAM_TP] == 208


# 2. The producer ---------------------------------------------------------------------------------------


async def test_producer_extra_settings_reach_aiokafka(app):
    """Faust builds AIOKafkaProducer with _settings_extra last, so acks="all" and idempotence take effect."""
    parameters = inspect.signature(AIOKafkaProducer.__init__).parameters
    assert {"acks", "enable_idempotence"} <= parameters.keys()
    assert driver.Producer._settings_extra(app.producer) == {}  # Faust's, outside exactly-once processing
    producer = app.producer._new_producer()
    try:
        assert isinstance(producer, AIOKafkaProducer)
        assert producer._txn_manager is not None  # aiokafka's mark of an idempotent producer
        assert producer._sender._acks == -1  # "all"
    finally:
        await producer.stop()


# 2. and 3. Our transport is the one Faust uses ---------------------------------------------------------


def test_faust_transport_takes_its_consumer_and_producer_from_class_attributes():
    """Faust's aiokafka Transport names its Consumer and Producer classes as class attributes, for kafka://."""
    assert faust.transport.by_url("kafka://127.0.0.1:1") is driver.Transport
    assert driver.Transport.Consumer is driver.Consumer
    assert driver.Transport.Producer is driver.Producer
    assert callable(faust.App._new_transport)
    assert callable(faust.App._new_producer_transport)
    assert callable(driver.Consumer._new_consumer_thread)


async def test_hamster_app_uses_our_consumer_and_producer_without_connecting(app):
    """streams.transport.App's consumer, its thread and producer are ours; building them connects nothing."""
    assert isinstance(app.transport, _Transport)
    assert isinstance(app.producer_transport, _Transport)
    assert type(app.consumer) is _Consumer
    assert type(app.consumer._thread) is _ConsumerThread
    assert type(app.producer) is _Producer
    assert app.consumer._thread._consumer is None  # aiokafka's consumer is made on start
    assert app.producer._producer is None


def test_noack_take_leaves_acknowledging_to_the_agent():
    """``agents.projection`` acknowledges a batch only after its transaction committed. ``noack_take`` must
    not acknowledge anything itself (``take_events`` does, in a ``finally``, even for a batch a rebalance
    cut off), and must hand out events, whose messages say where each record is."""
    code = [line.split("#")[0] for line in inspect.getsource(faust.Stream.noack_take).splitlines()]
    assert not [line for line in code if ".ack(" in line]
    assert [line for line in code if "self.enable_acks = False" in line]
    assert [line for line in code if "buffer_add(cast(T_co, event))" in line]
