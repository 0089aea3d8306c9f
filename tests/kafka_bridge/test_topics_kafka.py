"""ensure_topic against a real broker started by LocalBroker on free ports."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from kafka_bridge.local_broker import LocalBroker, free_port, free_port_pair
from kafka_bridge.topics import TopicError, TopicStatus, desired_topic_config, ensure_topic

TTL_MS = 120_000


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, controller = free_port_pair()
    broker = LocalBroker(
        port=port,
        controller_port=controller,
        data_dir=Path(tmp_path_factory.mktemp("kafka")),
        heap="256m",
        out=io.StringIO(),
    )
    try:
        yield broker.start(timeout=120)
    finally:
        broker.stop()


@pytest.fixture
def topic() -> str:
    return f"chat-{uuid.uuid4().hex[:10]}"


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def _config(bootstrap: str, topic: str) -> dict[str, str | None]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = _admin(bootstrap)  # keep the client alive until the future resolves
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def _eventually_config(bootstrap: str, topic: str, name: str, value: str) -> dict[str, str | None]:
    # A config change is committed by the controller; the broker's view follows within moments.
    deadline = time.monotonic() + 15
    while (config := _config(bootstrap, topic)).get(name) != value and time.monotonic() < deadline:
        time.sleep(0.2)
    return config


def _partitions(bootstrap: str, topic: str) -> int:
    return len(_admin(bootstrap).list_topics(topic=topic, timeout=10).topics[topic].partitions)


def _ensure(
    bootstrap: str,
    topic: str,
    *,
    replication_factor: int = 1,
    create: bool = True,
    fix_config: bool = False,
    timeout: float = 15,
) -> TopicStatus:
    return ensure_topic(
        bootstrap=bootstrap,
        topic=topic,
        partitions=5,
        replication_factor=replication_factor,
        ttl_ms=TTL_MS,
        create=create,
        fix_config=fix_config,
        timeout=timeout,
    )


def test_creates_topic_with_partitions_and_expiry_config(bootstrap: str, topic: str) -> None:
    """A missing topic is created with the configured partitions and the expiry settings."""
    status = _ensure(bootstrap, topic)
    assert status == TopicStatus(exists=True, created=True, partitions=5, drift=[], fixed=[])
    assert _partitions(bootstrap, topic) == 5
    config = _config(bootstrap, topic)
    assert config["retention.ms"] == "120000"
    assert config["message.timestamp.type"] == "LogAppendTime"
    for name, value in desired_topic_config(TTL_MS).items():
        assert config[name] == value, name


def test_second_call_is_idempotent(bootstrap: str, topic: str) -> None:
    """Ensuring an existing, matching topic creates nothing and reports no drift."""
    _ensure(bootstrap, topic)
    again = _ensure(bootstrap, topic)
    assert again == TopicStatus(exists=True, created=False, partitions=5, drift=[], fixed=[])


def test_check_mode_never_creates(bootstrap: str, topic: str) -> None:
    """With create=False a missing topic is reported as drift and stays missing."""
    status = _ensure(bootstrap, topic, create=False)
    assert status.exists is False and status.created is False
    assert status.drift == [f"topic {topic} does not exist"]
    assert topic not in _admin(bootstrap).list_topics(timeout=10).topics


def test_drift_is_reported_and_left_alone(bootstrap: str, topic: str) -> None:
    """A topic made elsewhere with other partitions and retention is reported, not changed."""
    made = NewTopic(topic, num_partitions=3, replication_factor=1, config={"retention.ms": "60000"})
    admin = _admin(bootstrap)  # keep the client alive until the future resolves
    admin.create_topics([made])[topic].result(timeout=30)

    status = _ensure(bootstrap, topic)
    assert status.created is False
    assert status.partitions == 3
    assert "partitions: topic has 3, CHAT_PARTITIONS says 5" in status.drift
    assert "retention.ms: topic has 60000, CHAT_MESSAGE_TTL says 120000" in status.drift
    assert "message.timestamp.type: topic has CreateTime, ephemchat says LogAppendTime" in status.drift
    assert status.fixed == []
    assert _config(bootstrap, topic)["retention.ms"] == "60000"
    assert _partitions(bootstrap, topic) == 3


def test_fix_config_fixes_settings_but_never_partitions(bootstrap: str, topic: str) -> None:
    """fix_config applies the topic settings; the partition count is only reported."""
    made = NewTopic(topic, num_partitions=3, replication_factor=1, config={"retention.ms": "60000"})
    admin = _admin(bootstrap)  # keep the client alive until the future resolves
    admin.create_topics([made])[topic].result(timeout=30)

    status = _ensure(bootstrap, topic, fix_config=True)
    assert "retention.ms: topic has 60000, CHAT_MESSAGE_TTL says 120000" in status.fixed
    assert status.drift == ["partitions: topic has 3, CHAT_PARTITIONS says 5"]

    config = _eventually_config(bootstrap, topic, "retention.ms", "120000")
    assert config["retention.ms"] == "120000"
    assert config["message.timestamp.type"] == "LogAppendTime"
    assert _partitions(bootstrap, topic) == 3
    assert _ensure(bootstrap, topic).drift == ["partitions: topic has 3, CHAT_PARTITIONS says 5"]


def test_concurrent_creation_races_safely(bootstrap: str, topic: str) -> None:
    """Several processes ensuring the same new topic: one creates it, none fails or sees drift."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: _ensure(bootstrap, topic), range(4)))
    assert sum(status.created for status in statuses) == 1
    assert all(status.exists and status.partitions == 5 and status.drift == [] for status in statuses)


def test_impossible_replication_factor_is_a_topic_error(bootstrap: str, topic: str) -> None:
    """Asking for more replicas than brokers fails with Kafka's reason, and creates nothing."""
    with pytest.raises(TopicError, match=f"could not create topic {topic}"):
        _ensure(bootstrap, topic, replication_factor=3)
    assert topic not in _admin(bootstrap).list_topics(timeout=10).topics


def test_unreachable_broker_is_a_clear_topic_error(topic: str) -> None:
    """No broker at the address: a TopicError that says so, after the timeout."""
    with pytest.raises(TopicError, match=r"cannot reach Kafka at 127\.0\.0\.1"):
        _ensure(f"127.0.0.1:{free_port()}", topic, timeout=2)
