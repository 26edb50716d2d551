"""The projection fills a gap in a run's records from the run log on the real broker."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from agents.projection import heal_gap
from hamster.projection.queries import get_run
from hamster.projection.sql import make_engine
from hamster.runs.events import encode_run_event
from hamster.settings import load_settings
from streams.admin import ensure_topics
from streams.topics import run_events_topic, topic_specs
from tests.unit.runs.records import RUN, requested, started, succeeded

pytestmark = pytest.mark.integration


def test_records_skipped_by_the_consumer_are_read_back(kafka_bootstrap, tmp_path):
    """Given only the third record of a run, the projection reads the first two back and shows all three."""
    settings = load_settings(
        kafka_bootstrap=kafka_bootstrap, namespace="h" + uuid.uuid4().hex[:8], partitions=1, home=tmp_path
    )
    ensure_topics(settings.kafka, topic_specs(settings))
    topic = run_events_topic(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    records = [requested(), started(2, 0), succeeded(3, 0, output={"ok": True})]
    offsets = [
        producer.send(topic, key=RUN.encode(), value=encode_run_event(r)).get(30).offset for r in records
    ]
    producer.close()
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    heal_gap(settings.kafka, engine, topic, 0, offsets[2], records[2])
    run = get_run(engine, RUN)
    assert run is not None and run["stages"][0]["status"] == "running"  # seq 1 and 2 read back
    from hamster.projection.sql import apply_batch

    assert apply_batch(engine, topic, [(0, offsets[2], records[2])]) == 1
    assert get_run(engine, RUN)["stages"][0]["output"] == {"ok": True}
