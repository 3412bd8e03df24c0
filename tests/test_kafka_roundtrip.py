"""The Kafka helpers against the real broker."""

import uuid

from confluent_kafka import Consumer

from tubewatch.kafka import (
    TypedConsumer,
    flush_or_raise,
    make_producer,
    produce_message,
)
from tubewatch.messages import VideoSnapshot


def snapshot(video_id: str, likes: int) -> VideoSnapshot:
    return VideoSnapshot(
        video_id=video_id,
        title=f"video {video_id}",
        likes=likes,
        comments=1,
        views=10,
        polled_at="2026-11-28T12:00:00Z",
    )


def drain(consumer: TypedConsumer, want: int, rounds: int = 30) -> list:
    got = []
    for _ in range(rounds):
        got += consumer.poll_batch(timeout_s=1.0)
        if len(got) >= want:
            break
    return got


def test_broker_is_apache_kafka(kafka_version):
    major = int(kafka_version.split(".")[0])
    assert major >= 4


def test_snapshot_produced_is_consumed_back_equal(kafka_bootstrap, topic_factory):
    topic = topic_factory("snap")
    sent = snapshot("Tk23kQRFWcw", 3020)
    producer = make_producer(kafka_bootstrap)
    produce_message(producer, topic, sent)
    flush_or_raise(producer)

    consumer = TypedConsumer(kafka_bootstrap, f"g-{uuid.uuid4()}", topic, VideoSnapshot)
    try:
        got = drain(consumer, 1)
    finally:
        consumer.close()
    assert [p.value for p in got] == [sent]


def test_malformed_message_goes_to_dlq_and_consumer_goes_on(kafka_bootstrap, topic_factory):
    topic = topic_factory("snap")
    dlq = topic_factory("dlq")
    producer = make_producer(kafka_bootstrap)
    producer.produce(topic, key=b"Tk23kQRFWcw", value=b"{not json")
    produce_message(producer, topic, snapshot("Tk23kQRFWcw", 1))
    flush_or_raise(producer)

    group = f"g-{uuid.uuid4()}"
    consumer = TypedConsumer(kafka_bootstrap, group, topic, VideoSnapshot, dlq_topic=dlq)
    try:
        got = drain(consumer, 1)
        consumer.commit()
    finally:
        consumer.close()
    assert [p.value.likes for p in got] == [1]

    reader = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"r-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([dlq])
    dead = None
    for _ in range(30):
        dead = reader.poll(1.0)
        if dead is not None and dead.error() is None:
            break
    reader.close()
    assert dead is not None and dead.value() == b"{not json"
    headers = dict(dead.headers())
    assert b"invalid youtube_videos" in headers["tubewatch-error"]
    assert headers["tubewatch-source-topic"] == topic.encode()
    assert headers["tubewatch-consumer-group"] == group.encode()


def test_restarted_consumer_does_not_see_committed_messages(kafka_bootstrap, topic_factory):
    topic = topic_factory("snap")
    producer = make_producer(kafka_bootstrap)
    for likes in (1, 2, 3):
        produce_message(producer, topic, snapshot("Tk23kQRFWcw", likes))
    flush_or_raise(producer)

    group = f"g-{uuid.uuid4()}"
    first = TypedConsumer(kafka_bootstrap, group, topic, VideoSnapshot)
    try:
        got = drain(first, 3)
        first.commit()
    finally:
        first.close()
    assert [p.value.likes for p in got] == [1, 2, 3]

    produce_message(producer, topic, snapshot("Tk23kQRFWcw", 4))
    flush_or_raise(producer)
    second = TypedConsumer(kafka_bootstrap, group, topic, VideoSnapshot)
    try:
        again = drain(second, 1)
        # anything still pending would show up within a few more polls
        again += second.poll_batch(timeout_s=2.0)
    finally:
        second.close()
    assert [p.value.likes for p in again] == [4]


def test_uncommitted_messages_are_redelivered(kafka_bootstrap, topic_factory):
    topic = topic_factory("snap")
    producer = make_producer(kafka_bootstrap)
    produce_message(producer, topic, snapshot("Tk23kQRFWcw", 7))
    flush_or_raise(producer)
    group = f"g-{uuid.uuid4()}"
    first = TypedConsumer(kafka_bootstrap, group, topic, VideoSnapshot)
    try:
        assert [p.value.likes for p in drain(first, 1)] == [7]
    finally:
        first.close()  # no commit: processing "crashed"
    second = TypedConsumer(kafka_bootstrap, group, topic, VideoSnapshot)
    try:
        assert [p.value.likes for p in drain(second, 1)] == [7]
    finally:
        second.close()
