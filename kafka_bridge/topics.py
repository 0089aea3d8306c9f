"""Admin for the chat topic: create it, or compare it with the settings and report drift.

`desired_topic_config` and `topic_drift` are pure; `ensure_topic` talks to Kafka.
The partition count is only ever reported, never changed: adding partitions moves rooms to
other partitions (PROTOCOL.md section 3), which breaks history and resume offsets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

# Cap on segment.ms: Kafka deletes whole closed segments, so text can stay on disk up to
# about TTL + segment.ms + log.retention.check.interval.ms (DESIGN.md decision 4).
MAX_SEGMENT_MS = 30_000
# Floor on segment.ms: a busy partition rolls at most one segment (3 files) per second.
MIN_SEGMENT_MS = 1_000

# Which setting each topic property comes from, for drift sentences.
_SOURCE = {"retention.ms": "CHAT_MESSAGE_TTL"}


class TopicError(Exception):
    """The topic could not be checked or created; the message says why."""


@dataclass
class TopicStatus:
    exists: bool
    created: bool
    partitions: int  # 0 when the topic does not exist
    drift: list[str] = field(default_factory=list)  # differences left as they are
    fixed: list[str] = field(default_factory=list)  # differences changed to the settings


def desired_topic_config(ttl_ms: int) -> dict[str, str]:
    """Topic settings that make expired text leave the broker soon after the TTL.

    segment.ms is a quarter of the TTL, between 1 s and 30 s: short TTLs (tests, demos)
    still expire promptly on disk, long ones keep about 4 to TTL/30 s segments per busy
    partition instead of thousands of tiny files.
    """
    if ttl_ms <= 0:
        raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
    segment_ms = min(MAX_SEGMENT_MS, max(MIN_SEGMENT_MS, ttl_ms // 4))
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(ttl_ms),
        "segment.ms": str(segment_ms),
        "message.timestamp.type": "LogAppendTime",
        "file.delete.delay.ms": "1000",
    }


def topic_drift(
    *,
    want_partitions: int,
    want_config: Mapping[str, str],
    have_partitions: int,
    have_config: Mapping[str, str | None],
    want_replication_factor: int | None = None,
    have_replication_factor: int | None = None,
) -> list[str]:
    """One human sentence per difference between the topic and the settings."""
    drift = []
    if have_partitions != want_partitions:
        drift.append(f"partitions: topic has {have_partitions}, CHAT_PARTITIONS says {want_partitions}")
    if (
        want_replication_factor is not None
        and have_replication_factor is not None
        and have_replication_factor != want_replication_factor
    ):
        drift.append(
            f"replication factor: topic has {have_replication_factor}, "
            f"CHAT_REPLICATION_FACTOR says {want_replication_factor}"
        )
    for name, want in want_config.items():
        have = have_config.get(name)
        if have != want:
            source = _SOURCE.get(name, "ephemchat")
            drift.append(
                f"{name}: topic has {have if have is not None else 'no value'}, {source} says {want}"
            )
    return drift


def _is_config_drift(sentence: str) -> bool:
    return not sentence.startswith(("partitions:", "replication factor:"))


def _admin(bootstrap: str) -> AdminClient:
    # log_level 0: an unreachable broker is reported once as TopicError, not logged per retry.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def _unreachable(bootstrap: str, exc: BaseException) -> TopicError:
    return TopicError(
        f"cannot reach Kafka at {bootstrap} ({exc}); is a broker running? "
        "Start a local one with `python manage.py localkafka start`, or set KAFKA_BOOTSTRAP_SERVERS"
    )


def _kafka_error(exc: BaseException) -> KafkaError | None:
    arg = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def ensure_topic(
    *,
    bootstrap: str,
    topic: str,
    partitions: int,
    replication_factor: int,
    ttl_ms: int,
    create: bool = True,
    fix_config: bool = False,
    timeout: float = 15,
) -> TopicStatus:
    """Create the chat topic if it is missing (and `create`), else report how it differs.

    Idempotent and safe to race with another process creating the same topic. Config
    drift is changed only with `fix_config`; partition and replication drift is reported.
    """
    want_config = desired_topic_config(ttl_ms)
    admin = _admin(bootstrap)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise _unreachable(bootstrap, exc) from exc

    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        if not create:
            return TopicStatus(
                exists=False, created=False, partitions=0, drift=[f"topic {topic} does not exist"]
            )
        new = NewTopic(
            topic, num_partitions=partitions, replication_factor=replication_factor, config=want_config
        )
        future = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)[topic]
        try:
            future.result(timeout=timeout + 5)
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"could not create topic {topic}: {error.str() if error else exc}") from exc
            # Another process created it meanwhile: check theirs like any existing topic.
        else:
            return TopicStatus(exists=True, created=True, partitions=partitions)
        metadata = _wait_for_topic(admin, topic, timeout)

    described = metadata.topics[topic]
    have_partitions = len(described.partitions)
    first = described.partitions.get(0)
    have_rf = len(first.replicas) if first is not None else None
    have_config = _describe_config(admin, bootstrap, topic, timeout)
    drift = topic_drift(
        want_partitions=partitions,
        want_config=want_config,
        have_partitions=have_partitions,
        have_config=have_config,
        want_replication_factor=replication_factor,
        have_replication_factor=have_rf,
    )
    fixed: list[str] = []
    if fix_config and (to_fix := [d for d in drift if _is_config_drift(d)]):
        changes = {name: value for name, value in want_config.items() if have_config.get(name) != value}
        _alter_config(admin, topic, changes, timeout)
        fixed = to_fix
        drift = [d for d in drift if not _is_config_drift(d)]
    return TopicStatus(exists=True, created=False, partitions=have_partitions, drift=drift, fixed=fixed)


def _wait_for_topic(admin: AdminClient, topic: str, timeout: float) -> ClusterMetadata:
    # After a TOPIC_ALREADY_EXISTS race the metadata may trail the controller briefly.
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
        entry = metadata.topics.get(topic)
        if entry is not None and entry.error is None and entry.partitions:
            return metadata
        if time.monotonic() > deadline:
            raise TopicError(f"topic {topic} exists but its metadata did not appear within {timeout:g} s")
        time.sleep(0.2)


def _describe_config(admin: AdminClient, bootstrap: str, topic: str, timeout: float) -> dict[str, str | None]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    future = admin.describe_configs([resource], request_timeout=timeout)[resource]
    try:
        entries = future.result(timeout=timeout + 5)
    except KafkaException as exc:
        raise TopicError(f"could not read the config of topic {topic} at {bootstrap}: {exc}") from exc
    return {name: entry.value for name, entry in entries.items()}


def _alter_config(admin: AdminClient, topic: str, changes: dict[str, str], timeout: float) -> None:
    entries = [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in changes.items()
    ]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    future = admin.incremental_alter_configs([resource], request_timeout=timeout)[resource]
    try:
        future.result(timeout=timeout + 5)
    except KafkaException as exc:
        raise TopicError(f"could not change the config of topic {topic}: {exc}") from exc
