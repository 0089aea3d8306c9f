"""The gateway's one Kafka producer, bridged into asyncio.

confluent-kafka's Producer never blocks on `produce`; a small thread polls it for
delivery reports and resolves asyncio futures with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ephemchat.config import ChatConfig
from kafka_bridge import metrics
from kafka_bridge.clients import producer_settings
from kafka_bridge.records import ChatRecord, encode_record

logger = logging.getLogger(__name__)


MAX_COUNTED_ROOMS = 10_000  # bound of the per-room ack counts kept between stats snapshots


class DeliveryFailed(Exception):
    """Kafka did not acknowledge the record; it was dropped, not retried later."""


class ChatProducer:
    def __init__(self, config: ChatConfig) -> None:
        self.config = config
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self.in_flight = 0
        # For the cluster stats: acked sends per room since the last snapshot, and the
        # latest produce latencies (bounded) for a p99.
        self.acked_by_room: Counter[str] = Counter()
        self.recent_latencies_s: deque[float] = deque(maxlen=2048)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._producer = Producer(producer_settings(self.config))
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll_forever(self) -> None:
        assert self._producer is not None
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    def send(self, record: ChatRecord) -> asyncio.Future[tuple[int, int]]:
        """Produce one record; the future resolves to (partition, offset) once acked with acks=all."""
        assert self._producer is not None and self._loop is not None
        loop = self._loop
        future: asyncio.Future[tuple[int, int]] = loop.create_future()
        started = time.monotonic()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            # Runs in the poll thread.
            loop.call_soon_threadsafe(self._resolve, future, err, msg, started, record.room)

        key, value = encode_record(record)
        try:
            self._producer.produce(self.config.topic, value=value, key=key, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            future.set_exception(DeliveryFailed(f"the producer queue refused the record: {exc}"))
            return future
        self.in_flight += 1
        return future

    def _resolve(
        self,
        future: asyncio.Future[tuple[int, int]],
        err: KafkaError | None,
        msg: Message,
        started: float,
        room: str,
    ) -> None:
        self.in_flight -= 1
        latency = time.monotonic() - started
        metrics.PRODUCE_LATENCY.observe(latency)
        self.recent_latencies_s.append(latency)
        if future.done():
            return
        if err is not None:
            metrics.PRODUCE_FAILURES.inc()
            future.set_exception(DeliveryFailed(err.str()))
        else:
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            if len(self.acked_by_room) >= MAX_COUNTED_ROOMS:  # stats not collecting: start over
                self.acked_by_room.clear()
            self.acked_by_room[room] += 1
            future.set_result((partition, offset))

    def list_topic(self, timeout: float) -> int:
        """Partition count of the chat topic; raises when Kafka does not answer (blocking)."""
        assert self._producer is not None
        metadata = self._producer.list_topics(self.config.topic, timeout=timeout)
        topic = metadata.topics.get(self.config.topic)
        if topic is None or topic.error is not None:
            raise KafkaException(topic.error if topic else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        return len(topic.partitions)

    def close(self, timeout: float) -> int:
        """Wait up to `timeout` for in-flight records (their futures resolve), then stop."""
        if self._producer is None:
            return 0
        remaining = self._producer.flush(timeout)
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=1)
        if remaining:
            logger.warning("%d records were still unacknowledged at shutdown", remaining)
        return int(remaining)
