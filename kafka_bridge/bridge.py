"""The Kafka bridge: reads the partitions of the rooms that have members on this gateway.

Fan-out rule (DESIGN.md decision 1): every gateway reads every record of every room with
a local member. So the bridge *assigns* partitions by hand (no consumer group): a
partition is assigned when the first local room on it gets a member and released when
the last one leaves. Records are filtered by key before their value is decoded, then
handed in batches to a `Dispatcher` on the event loop. The bridge knows nothing of
WebSockets or channel layers.

librdkafka calls block, so the consumer lives in its own thread; the event loop talks to
it through a queue of commands, and gets batches back with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition

from ephemchat.config import ChatConfig
from kafka_bridge import metrics
from kafka_bridge.clients import reader_settings, take_batch, watermarks
from kafka_bridge.partitioner import room_partition
from kafka_bridge.records import BadRecord, ChatMessage, decode_record, message_from_record

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # records per consume() call; a batch is one hop to the event loop
POLL_TIMEOUT_S = 0.01  # also how fast the thread notices new commands (a join waits on it)
LAG_REFRESH_S = 5.0  # how often per-partition lag is exported
# Batches handed to the event loop and not dispatched yet. Past this the bridge stops
# reading: Kafka keeps the records, instead of the loop's queue growing without bound.
MAX_BATCHES_IN_FLIGHT = 4
ASSIGN_TIMEOUT_S = 4.0  # under the join timeout, so a join learns why it failed


class Dispatcher(Protocol):
    def dispatch(self, messages: Sequence[ChatMessage]) -> None:
        """Called on the event loop with messages in partition order."""


class BridgeUnavailable(Exception):
    """Kafka did not answer a request of the bridge in time."""


@dataclass(slots=True)
class _Assign:
    partition: int
    done: asyncio.Future[None]


@dataclass(slots=True)
class _Release:
    partition: int


class KafkaBridge:
    def __init__(self, config: ChatConfig, dispatcher: Dispatcher, *, partitions: int) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.partitions = partitions
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands: queue.SimpleQueue[_Assign | _Release | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Loop side: members per room, rooms per partition.
        self._room_members: Tally[str] = Tally()
        self._partition_rooms: dict[int, set[str]] = {}
        self._assigning: dict[int, asyncio.Future[None]] = {}
        # Read by the thread; replaced (never mutated) by the loop.
        self._wanted_keys: frozenset[bytes] = frozenset()
        # Thread side.
        self._assigned: set[int] = set()
        self._batch_slots = threading.BoundedSemaphore(MAX_BATCHES_IN_FLIGHT)
        self.lag: dict[int, int] = {}  # partition -> records behind, refreshed every LAG_REFRESH_S
        self.counts: Tally[str] = Tally()

    # -- event loop side -------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="kafka-bridge", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    def assigned_partitions(self) -> list[int]:
        return sorted(p for p, rooms in self._partition_rooms.items() if rooms)

    def local_rooms(self) -> dict[str, int]:
        return dict(self._room_members)

    async def add_member(self, room: str, *, timeout: float) -> None:
        """A member of `room` arrived here; returns once its partition is being read.

        Reading starts at the partition's high watermark, so a history read made after
        this returns plus the live records from here on cover the room without a gap.
        """
        assert self._loop is not None
        self._room_members[room] += 1
        partition = room_partition(room, self.partitions)
        rooms = self._partition_rooms.setdefault(partition, set())
        partition_is_new = not rooms
        if room not in rooms:
            rooms.add(room)
            self._wanted_keys = frozenset(r.encode() for r in self._room_members)
            metrics.BRIDGE_ROOMS.set(len(self._room_members))
        pending = self._assigning.get(partition)
        if partition_is_new:
            pending = self._loop.create_future()
            self._assigning[partition] = pending
            self._commands.put(_Assign(partition, pending))
        if pending is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pending), timeout)
            except (TimeoutError, BridgeUnavailable):
                self.remove_member(room)
                raise BridgeUnavailable(f"partition {partition} could not be assigned") from None
            except asyncio.CancelledError:  # the member left or disconnected meanwhile
                self.remove_member(room)
                raise

    def remove_member(self, room: str) -> None:
        if self._room_members[room] <= 0:
            return
        self._room_members[room] -= 1
        if self._room_members[room]:
            return
        del self._room_members[room]
        self._wanted_keys = frozenset(r.encode() for r in self._room_members)
        metrics.BRIDGE_ROOMS.set(len(self._room_members))
        partition = room_partition(room, self.partitions)
        rooms = self._partition_rooms.get(partition, set())
        rooms.discard(room)
        if not rooms:
            self._partition_rooms.pop(partition, None)
            self._commands.put(_Release(partition))

    def _assigned_done(self, partition: int, future: asyncio.Future[None], error: str | None) -> None:
        # Only the newest request for a partition is current: an older one may finish after
        # the partition was released and asked for again, and must not answer for it.
        current = self._assigning.get(partition) is future
        if current:
            del self._assigning[partition]
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(BridgeUnavailable(error))
        if error is not None and current:
            # Nobody reads this partition now; forget the rooms that waited on it.
            for room in list(self._partition_rooms.get(partition, ())):
                self._room_members.pop(room, None)
            self._partition_rooms.pop(partition, None)
            self._wanted_keys = frozenset(r.encode() for r in self._room_members)

    def stop(self) -> None:
        self._stopping.set()
        self._commands.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- bridge thread -----------------------------------------------------------------

    def _run(self) -> None:
        consumer = Consumer(reader_settings(self.config, "ephemchat-bridge"))
        last_lag = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    self._apply_commands(consumer, block=not self._assigned)
                    if not self._assigned:
                        continue
                    self._dispatch(take_batch(consumer, BATCH_SIZE, POLL_TIMEOUT_S))
                    now = time.monotonic()
                    if now - last_lag > LAG_REFRESH_S:
                        last_lag = now
                        self._export_lag(consumer)
                except Exception:  # never let one bad moment stop every room on this gateway
                    logger.exception("the Kafka bridge hit an error; it carries on")
                    self._stopping.wait(1.0)
        finally:
            consumer.close()

    def _apply_commands(self, consumer: Consumer, *, block: bool) -> None:
        while True:
            try:
                command = self._commands.get(timeout=POLL_TIMEOUT_S) if block else self._commands.get_nowait()
            except queue.Empty:
                return
            block = False
            if command is None:
                return
            tp = TopicPartition(self.config.topic, command.partition)
            if isinstance(command, _Release):
                if command.partition in self._assigned:
                    consumer.incremental_unassign([tp])
                    self._assigned.discard(command.partition)
                    metrics.BRIDGE_PARTITION_READ.labels(str(command.partition)).set(0)
                    self.lag.pop(command.partition, None)
                    with contextlib.suppress(KeyError):  # no lag exported for it yet
                        metrics.BRIDGE_LAG.remove(str(command.partition))
            else:
                self._assign(consumer, command)
            metrics.BRIDGE_PARTITIONS.set(len(self._assigned))

    def _assign(self, consumer: Consumer, command: _Assign) -> None:
        error: str | None = None
        if command.partition not in self._assigned:
            tp = TopicPartition(self.config.topic, command.partition)
            try:
                _low, high = watermarks(consumer, tp, deadline=time.monotonic() + ASSIGN_TIMEOUT_S)
                consumer.incremental_assign([TopicPartition(self.config.topic, command.partition, high)])
                self._assigned.add(command.partition)
                metrics.BRIDGE_PARTITION_READ.labels(str(command.partition)).set(1)
            except Exception as exc:  # KafkaException, or a timeout while the broker is away
                error = f"cannot read partition {command.partition}: {exc}"
                logger.warning(error)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._assigned_done, command.partition, command.done, error)

    def _dispatch(self, records: list) -> None:  # type: ignore[type-arg]
        wanted = self._wanted_keys
        ttl_ms = self.config.ttl_ms
        batch: list[ChatMessage] = []
        for record in records:
            error = record.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.counts["errors"] += 1
                    logger.warning("bridge read error: %s", error)
                continue
            key = record.key()
            if key not in wanted:
                self.counts["filtered"] += 1
                continue
            ts_type, ts = record.timestamp()
            try:
                if ts_type == TIMESTAMP_NOT_AVAILABLE:
                    raise BadRecord("record has no timestamp")
                parsed = decode_record(key, record.value(), max_text_chars=self.config.max_text_chars)
            except BadRecord as exc:
                self.counts["bad"] += 1
                logger.info("skipped a bad record at offset %s: %s", record.offset(), exc)
                continue
            batch.append(message_from_record(parsed, offset=record.offset(), ts=ts, ttl_ms=ttl_ms))
        if self.counts:
            for outcome in ("filtered", "bad"):
                if self.counts[outcome]:
                    metrics.BRIDGE_RECORDS.labels(outcome).inc(self.counts.pop(outcome))
        if batch:
            metrics.BRIDGE_RECORDS.labels("dispatched").inc(len(batch))
            assert self._loop is not None
            while not self._batch_slots.acquire(timeout=POLL_TIMEOUT_S):
                if self._stopping.is_set():
                    return
            self._loop.call_soon_threadsafe(self._dispatch_on_loop, batch)

    def _dispatch_on_loop(self, batch: list[ChatMessage]) -> None:
        try:
            self.dispatcher.dispatch(batch)
        finally:
            self._batch_slots.release()

    def _export_lag(self, consumer: Consumer) -> None:
        try:
            positions = consumer.position(
                [TopicPartition(self.config.topic, p) for p in sorted(self._assigned)]
            )
            lag: dict[int, int] = {}
            for tp in positions:
                _low, high = consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
                if tp.offset >= 0 and high >= 0:
                    lag[tp.partition] = max(0, high - tp.offset)
                    metrics.BRIDGE_LAG.labels(str(tp.partition)).set(lag[tp.partition])
            self.lag = lag
        except Exception as exc:  # lag is informative only
            logger.debug("could not export bridge lag: %s", exc)
