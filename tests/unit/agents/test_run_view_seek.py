"""A starting worker finds the stage requests of the runs in flight, even one written while it looks."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndTimestamp

from agents.plumbing.run_view import RunView
from hamster.settings import Settings


class WrittenWhileAsked:
    """A stage topic partition that is empty when the view first asks about it, and holds one request (at
    offset 0) from the second question on: the match agent wrote it in between."""

    def __init__(self) -> None:
        self.asked = 0
        self.seeks: dict[TopicPartition, int] = {}

    def _written(self) -> bool:
        self.asked += 1
        return self.asked > 1

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 1 if self._written() else 0 for tp in tps}

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        return {tp: OffsetAndTimestamp(0, when) if self._written() else None for tp, when in times.items()}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


async def test_a_stage_request_written_while_the_view_starts_is_read():
    """The view seeks a stage topic to no later than a request written between its questions to Kafka."""
    view = RunView(Settings(namespace="t"), ["t.stage.quick"])
    tp = TopicPartition("t.stage.quick", 0)
    consumer = WrittenWhileAsked()
    await view._seek_stage_topics(consumer, [tp])
    assert consumer.seeks == {tp: 0}
