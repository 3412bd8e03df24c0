"""Shared fixtures: a real Apache Kafka broker, unique topic names, a database file.

The broker: ``TUBEWATCH_TEST_KAFKA_BOOTSTRAP`` if set (``.ci/run`` starts one with
``scripts/dev-kafka``), else this session starts its own with ``scripts/dev-kafka`` on a free
port and stops it at the end. The broker's version is printed in the test log header.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tubewatch.kafka import TopicSpec, ensure_topics

ROOT = Path(__file__).resolve().parent.parent
DEV_KAFKA = ROOT / "scripts" / "dev-kafka"


def _free_port_pair() -> int:
    """A port P with P+1 also free (dev-kafka puts its controller on P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def broker_version(port: int) -> str | None:
    """The version the running dev-kafka broker logged at start ("Kafka version: 4.1.1")."""
    log = ROOT / ".cache" / "kafka" / f"run-{port}" / "broker.log"
    if not log.exists():
        return None
    match = re.search(r"Kafka version: (\S+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("TUBEWATCH_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    port = _free_port_pair()
    subprocess.run([str(DEV_KAFKA), "start", "--port", str(port)], check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(DEV_KAFKA), "stop", "--port", str(port)], check=False)


def pytest_report_header(config):
    bootstrap = os.environ.get("TUBEWATCH_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return "kafka: started by the tests with scripts/dev-kafka (version logged per test)"
    port = int(bootstrap.rsplit(":", 1)[1])
    version = broker_version(port)
    return f"kafka: Apache Kafka {version or '(version unknown)'} at {bootstrap}"


@pytest.fixture(scope="session")
def kafka_version(kafka_bootstrap) -> str:
    version = broker_version(int(kafka_bootstrap.rsplit(":", 1)[1]))
    assert version, "the broker is not a dev-kafka Apache Kafka (no version in its log)"
    print(f"\nbroker: Apache Kafka {version} at {kafka_bootstrap}")
    return version


@pytest.fixture
def topic_factory(kafka_bootstrap):
    """Creates fresh, uniquely named topics so tests never see each other's messages."""

    def make(base: str, partitions: int = 1) -> str:
        name = f"{base}-{uuid.uuid4().hex[:10]}"
        ensure_topics(kafka_bootstrap, [TopicSpec(name, 3600_000)], partitions=partitions)
        return name

    return make


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tubewatch.db'}"
