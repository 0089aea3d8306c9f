"""librdkafka settings shared by our producer and consumers, tuned for chat latency."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ephemchat.config import ChatConfig

librdkafka_logger = logging.getLogger("kafka_bridge.librdkafka")


def common_settings(config: ChatConfig, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": config.bootstrap_servers,
        "client.id": client_id,
        "logger": librdkafka_logger,
        # Reconnect quickly after a broker restart; chat users notice seconds.
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 2000,
        "socket.connection.setup.timeout.ms": 5000,
    }


def producer_settings(config: ChatConfig) -> dict[str, Any]:
    return {
        **common_settings(config, "ephemchat-gateway"),
        "acks": "all",
        "enable.idempotence": True,
        # Kafka's default partitioner for keyed records (librdkafka's own default differs).
        "partitioner": "murmur2_random",
        # A quiet room should not wait for a batch to fill: 1 ms still batches bursts.
        "linger.ms": 1,
        # A bounded delivery: past it the send is answered `unavailable` and dropped.
        "delivery.timeout.ms": config.delivery_timeout_ms,
        "request.timeout.ms": min(30000, config.delivery_timeout_ms),
    }


def reader_settings(config: ChatConfig, client_id: str) -> dict[str, Any]:
    """A consumer that is assigned partitions by hand: no group, no commits."""
    return {
        **common_settings(config, client_id),
        "group.id": f"ephemchat-{client_id}-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # An offset gone from the log (deleted segment, a reader far behind): restart from the
        # oldest record still there, not the end; expired ones are dropped by the TTL check.
        "auto.offset.reset": "earliest",
        # The default 500 ms is paid by every quiet room; chat wants tens of ms at most.
        "fetch.wait.max.ms": 10,
        "fetch.min.bytes": 1,
        # Bounded prefetch per partition (librdkafka's default is 64 MB a partition).
        "queued.max.messages.kbytes": 8192,
    }


# Errors that pass on their own: a new topic's leaders, a broker restarting.
_RETRIABLE = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)

T = TypeVar("T")


def _is_retriable(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (error.code() in _RETRIABLE or error.retriable())


def retrying(call: Callable[[float], T], *, deadline: float) -> T:
    """`call(timeout)` again after passing errors until `deadline` (monotonic)."""
    while True:
        try:
            return call(max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            if not _is_retriable(exc) or time.monotonic() + 0.1 >= deadline:
                raise
            time.sleep(0.1)


def watermarks(consumer: Consumer, tp: TopicPartition, *, deadline: float) -> tuple[int, int]:
    """(low, high) watermark of a partition, read from the leader (not cached)."""
    low, high = retrying(
        lambda timeout: consumer.get_watermark_offsets(tp, timeout=timeout, cached=False), deadline=deadline
    )
    return int(low), int(high)


def offset_for_time(consumer: Consumer, tp: TopicPartition, *, deadline: float) -> int:
    """The first offset with a timestamp >= tp.offset (a time in ms); -1 when there is none."""

    def lookup(timeout: float) -> int:
        (found,) = consumer.offsets_for_times([tp], timeout=timeout)
        if found.error is not None:
            raise KafkaException(found.error)
        return int(found.offset)

    return retrying(lookup, deadline=deadline)


def take_batch(consumer: Consumer, limit: int, timeout: float) -> list[Message]:
    """What is there now, up to `limit` records, waiting at most `timeout` for the first.

    `consume(limit, timeout)` waits until it has `limit` records or the timeout passed: on
    a quiet room that is the whole timeout, added to every message's latency.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, 0)]
