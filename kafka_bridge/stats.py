"""Cluster-wide live figures: every gateway publishes a snapshot, every gateway reads all.

Each gateway writes a small JSON snapshot every STATS_INTERVAL_S to a one-partition,
short-lived topic (`<CHAT_TOPIC>-stats`, retention 60 s), keyed by its gateway id. Each
gateway also reads that topic from "now - 30 s", and keeps the newest snapshot of each
gateway seen within the last GATEWAY_STALE_S. So any gateway can answer for the whole
cluster, with no database and no extra service. Snapshots hold counts only, never text.

Why a Kafka topic: Kafka is already every gateway's only shared dependency; a topic with
one partition gives every reader the same ordered stream; retention cleans up by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ephemchat.config import ChatConfig
from kafka_bridge.clients import common_settings, reader_settings

logger = logging.getLogger(__name__)

STATS_INTERVAL_S = 3.0
GATEWAY_STALE_S = 15.0  # a gateway silent this long has left the cluster view
STATS_RETENTION_MS = 60_000
LOOKBACK_MS = 30_000

Snapshot = dict[str, Any]


def stats_topic(config: ChatConfig) -> str:
    return f"{config.topic}-stats"


def new_gateway_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def cluster_view(snapshots: dict[str, Snapshot], *, now_ms: int, stale_ms: int) -> dict[str, Any]:
    """Pure: totals over the gateways whose newest snapshot is fresh."""
    live = {g: s for g, s in snapshots.items() if now_ms - int(s.get("ts", 0)) <= stale_ms}
    rooms: dict[str, dict[str, float]] = {}
    totals: dict[str, Any] = {
        "connections": 0,
        "frames_in_per_s": 0.0,
        "frames_out_per_s": 0.0,
        "messages_per_s": 0.0,
        "drops": 0,
        "lag": 0,
    }
    p99s = []
    for snapshot in live.values():
        totals["connections"] += int(snapshot.get("connections", 0))
        totals["frames_in_per_s"] += float(snapshot.get("frames_in_per_s", 0.0))
        totals["frames_out_per_s"] += float(snapshot.get("frames_out_per_s", 0.0))
        totals["drops"] += int(snapshot.get("drops", 0))
        totals["lag"] += sum(int(v) for v in snapshot.get("lag", {}).values())
        if snapshot.get("produce_p99_ms") is not None:
            p99s.append(float(snapshot["produce_p99_ms"]))
        for room, members in snapshot.get("rooms", {}).items():
            rooms.setdefault(room, {"members": 0, "rate": 0.0})["members"] += int(members)
        for room, rate in snapshot.get("room_rates", {}).items():
            # Each message is produced by exactly one gateway: per-room rates add up.
            rooms.setdefault(room, {"members": 0, "rate": 0.0})["rate"] += float(rate)
            totals["messages_per_s"] += float(rate)
    totals["produce_p99_ms"] = max(p99s) if p99s else None
    return {"gateways": dict(sorted(live.items())), "rooms": rooms, "totals": totals, "count": len(live)}


class ClusterStats:
    """Publishes this gateway's snapshot and collects everyone's (one thread)."""

    def __init__(
        self,
        config: ChatConfig,
        snapshot: Callable[[float], Snapshot],
        gateway_id: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.loop = loop  # the snapshot reads state owned by the event loop: it runs there
        self.config = config
        self.topic = stats_topic(config)
        self.snapshot = snapshot
        self.gateway_id = gateway_id
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cluster-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def view(self) -> dict[str, Any]:
        with self._lock:
            snapshots = dict(self._snapshots)
        return cluster_view(snapshots, now_ms=int(time.time() * 1000), stale_ms=int(GATEWAY_STALE_S * 1000))

    def _publish(self, producer: Producer, elapsed: float) -> None:
        async def take() -> Snapshot:
            return self.snapshot(elapsed)

        figures = asyncio.run_coroutine_threadsafe(take(), self.loop).result(timeout=5)
        snapshot = {**figures, "gateway": self.gateway_id, "ts": int(time.time() * 1000)}
        producer.produce(self.topic, key=self.gateway_id.encode(), value=json.dumps(snapshot).encode())
        producer.poll(0)

    def _ensure_topic(self) -> None:
        admin = AdminClient(common_settings(self.config, "ephemchat-stats-admin"))
        topic = NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=self.config.replication_factor,
            config={
                "retention.ms": str(STATS_RETENTION_MS),
                "segment.ms": "20000",
                "cleanup.policy": "delete",
            },
        )
        for future in admin.create_topics([topic]).values():
            try:
                future.result(timeout=10)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._ensure_topic()
                break
            except Exception as exc:  # Kafka away: the chat works without stats; try again
                logger.warning("stats topic not ready: %s", exc)
                self._stopping.wait(STATS_INTERVAL_S)
        producer = Producer({**common_settings(self.config, "ephemchat-stats"), "linger.ms": 50, "acks": 1})
        consumer = Consumer(reader_settings(self.config, "ephemchat-stats-reader"))
        since = int(time.time() * 1000) - LOOKBACK_MS
        try:
            (start,) = consumer.offsets_for_times([TopicPartition(self.topic, 0, since)], timeout=10)
            consumer.assign([TopicPartition(self.topic, 0, start.offset if start.offset >= 0 else -1)])
        except KafkaException as exc:
            logger.warning("stats reader starts at the end: %s", exc)
            consumer.assign([TopicPartition(self.topic, 0, -1)])
        last = time.monotonic()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now - last >= STATS_INTERVAL_S:
                    elapsed, last = now - last, now
                    try:
                        self._publish(producer, elapsed)
                    except Exception:  # a snapshot that failed: skip it, keep the thread
                        logger.exception("could not publish this gateway's stats")
                for record in consumer.consume(100, 0.5):
                    value = record.value()
                    if record.error() is not None or value is None:
                        continue
                    try:
                        snapshot = json.loads(value)
                        gateway = str(snapshot["gateway"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    with self._lock:
                        self._snapshots[gateway] = snapshot
                        cutoff = int(time.time() * 1000) - int(GATEWAY_STALE_S * 1000) * 4
                        for old in [g for g, s in self._snapshots.items() if int(s.get("ts", 0)) < cutoff]:
                            del self._snapshots[old]
        finally:
            producer.flush(2)
            consumer.close()
