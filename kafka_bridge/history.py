"""Room history straight from Kafka, with one shared reader per gateway.

A join asks for the room's unexpired messages (after `since`, when given). The reader
seeks the room's partition to `offsets_for_times(now - TTL)` (or `since + 1`), reads up to
the high watermark, keeps the room's records and returns the newest `limit`. One consumer
serves every join in turn from its own thread: no consumer or group is made per join.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition

from ephemchat.config import ChatConfig
from kafka_bridge import metrics
from kafka_bridge.clients import offset_for_time, reader_settings, take_batch, watermarks
from kafka_bridge.partitioner import room_partition
from kafka_bridge.records import BadRecord, ChatMessage, decode_record, is_expired, message_from_record

logger = logging.getLogger(__name__)

# Joins waiting for the reader. Each read takes milliseconds; past this many queued joins
# the gateway answers `unavailable` at once instead of letting waits grow without bound.
MAX_QUEUED_READS = 1000
READ_BATCH = 1000


class HistoryUnavailable(Exception):
    """The history could not be read from Kafka in time."""


@dataclass(frozen=True, slots=True)
class History:
    messages: list[ChatMessage]
    truncated: bool
    end_offset: int | None = None  # the partition's high watermark when read (None: unknown)


@dataclass(slots=True)
class _Read:
    room: str
    since: int | None
    limit: int
    deadline: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[History]


class HistoryReader:
    def __init__(self, config: ChatConfig, *, partitions: int) -> None:
        self.config = config
        self.partitions = partitions
        self._requests: queue.Queue[_Read | None] = queue.Queue(maxsize=MAX_QUEUED_READS)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kafka-history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        try:
            self._requests.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def read(self, room: str, *, since: int | None, limit: int, timeout: float) -> History:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[History] = loop.create_future()
        request = _Read(room, since, limit, time.monotonic() + timeout, loop, future)
        try:
            self._requests.put_nowait(request)
        except queue.Full:
            raise HistoryUnavailable("too many history reads are waiting") from None
        started = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            metrics.HISTORY_READ_FAILURES.inc()
            raise HistoryUnavailable("Kafka did not answer the history read in time") from None
        finally:
            metrics.HISTORY_READ_SECONDS.observe(time.monotonic() - started)

    def _run(self) -> None:
        consumer = Consumer(reader_settings(self.config, "ephemchat-history"))
        try:
            while (request := self._requests.get()) is not None:
                if time.monotonic() >= request.deadline or request.future.done():
                    continue
                try:
                    result = self._read(consumer, request)
                except Exception as exc:
                    logger.warning("history read for a room failed: %s", exc)
                    request.loop.call_soon_threadsafe(_fail, request.future, HistoryUnavailable(str(exc)))
                else:
                    request.loop.call_soon_threadsafe(_succeed, request.future, result)
        finally:
            consumer.close()

    def _read(self, consumer: Consumer, request: _Read) -> History:
        topic, ttl_ms = self.config.topic, self.config.ttl_ms
        partition = room_partition(request.room, self.partitions)
        now_ms = int(time.time() * 1000)
        low, high = watermarks(consumer, TopicPartition(topic, partition), deadline=request.deadline)
        by_time = offset_for_time(
            consumer, TopicPartition(topic, partition, now_ms - ttl_ms), deadline=request.deadline
        )
        # -1: no record is that new, so nothing is unexpired.
        start = max(low, by_time if by_time >= 0 else high)
        if request.since is not None:
            start = max(start, request.since + 1)
        if start >= high:
            return History(messages=[], truncated=False, end_offset=high)
        key = request.room.encode()
        kept: deque[ChatMessage] = deque(maxlen=request.limit)
        matched = 0
        consumer.assign([TopicPartition(topic, partition, start)])
        try:
            position = start
            while position < high:
                if time.monotonic() >= request.deadline:
                    raise HistoryUnavailable("history read timed out")
                records = take_batch(consumer, READ_BATCH, 0.2)
                if not records:
                    # Offsets can be missing (transaction markers of other producers).
                    (at,) = consumer.position([TopicPartition(topic, partition)])
                    position = max(position, at.offset)
                for record in records:
                    if record.error() is not None:
                        continue
                    offset = record.offset() or 0
                    position = offset + 1
                    if record.key() != key or position > high:
                        continue
                    ts_type, ts = record.timestamp()
                    if ts_type == TIMESTAMP_NOT_AVAILABLE:
                        continue
                    try:
                        parsed = decode_record(key, record.value(), max_text_chars=self.config.max_text_chars)
                    except BadRecord:
                        metrics.HISTORY_BAD_RECORDS.inc()
                        continue
                    message = message_from_record(parsed, offset=offset, ts=ts, ttl_ms=ttl_ms)
                    if is_expired(message.expires_at, now_ms):
                        continue
                    matched += 1
                    kept.append(message)
        finally:
            consumer.unassign()
        return History(messages=list(kept), truncated=matched > len(kept), end_offset=high)


def _succeed(future: asyncio.Future[History], result: History) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[History], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
