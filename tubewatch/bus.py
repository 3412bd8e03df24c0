"""The message bus the services run on: Apache Kafka, or the embedded default.

Services never build Kafka clients themselves; they take a `Bus` and ask it for a producer
and for typed consumers, so the same service code runs on a real broker
(``TUBEWATCH_KAFKA_BOOTSTRAP`` set) and on the embedded default (a log in the database,
`tubewatch.embedded_bus`) that `tubewatch run` uses with no broker.

A producer has confluent-kafka's surface: ``produce(topic, key=, value=, headers=,
on_delivery=)``, ``poll(timeout)``, ``flush(timeout) -> int``. A consumer is a
`tubewatch.kafka.TypedConsumer` or behaves like one: ``poll_batch(max_messages, timeout_s)``
returns parsed messages (malformed ones went to the dead-letter topic), ``commit()``
commits what was returned so far, ``close()``.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy.engine import Engine

from tubewatch.db import get_engine, init_db
from tubewatch.kafka import (
    DLQ,
    TypedConsumer,
    contract_topics,
    ensure_topics,
    make_producer,
)
from tubewatch.messages import _Message
from tubewatch.settings import Settings

M = TypeVar("M", bound=_Message)


class Bus(Protocol):
    def producer(self, **overrides: object): ...

    def consumer(
        self,
        group_id: str,
        topic: str,
        model: type[M],
        *,
        dlq_topic: str = DLQ,
        on_revoke=None,
        **overrides: object,
    ): ...

    def ensure_topics(self) -> None: ...

    def describe(self) -> str: ...


class KafkaBus:
    """The real thing: confluent-kafka clients against ``bootstrap``."""

    def __init__(
        self,
        bootstrap: str,
        partitions: int = 6,
        replication_factor: int = 1,
        retention_days: int = 30,
    ):
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.retention_days = retention_days

    def producer(self, **overrides: object):
        return make_producer(self.bootstrap, **overrides)

    def consumer(
        self,
        group_id: str,
        topic: str,
        model: type[M],
        *,
        dlq_topic: str = DLQ,
        on_revoke=None,
        **overrides: object,
    ):
        return TypedConsumer(
            self.bootstrap,
            group_id,
            topic,
            model,
            dlq_topic=dlq_topic,
            on_revoke=on_revoke,
            **overrides,
        )

    def ensure_topics(self) -> None:
        ensure_topics(
            self.bootstrap,
            contract_topics(self.retention_days),
            self.partitions,
            self.replication_factor,
        )

    def describe(self) -> str:
        return f"kafka at {self.bootstrap}"


def bus_from_settings(settings: Settings) -> Bus:
    """Kafka when ``TUBEWATCH_KAFKA_BOOTSTRAP`` is set, else the embedded default."""
    if settings.kafka_bootstrap:
        return KafkaBus(
            settings.kafka_bootstrap,
            settings.kafka_partitions,
            settings.kafka_replication_factor,
            settings.snapshot_retention_days,
        )
    from tubewatch.embedded_bus import EmbeddedBus

    return EmbeddedBus.from_settings(settings)


def open_database_and_bus(settings: Settings) -> tuple[Engine, Bus]:
    """What every service process starts from: the database at the current schema (migrated
    if needed) and the bus with the contract's topics in place."""
    engine = get_engine(settings.database_url)
    init_db(engine)
    bus = bus_from_settings(settings)
    bus.ensure_topics()
    return engine, bus
