"""One gateway's Kafka side: the producer, the bridge and the history reader, together.

`KafkaGateway` is what the WebSocket consumers talk to (through `rooms.ports.ChatBackend`).
It starts once per process: eagerly in `runkafkabridge`, or lazily on the first
connection under plain `daphne`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ephemchat.config import ChatConfig
from kafka_bridge.bridge import BridgeUnavailable, Dispatcher, KafkaBridge
from kafka_bridge.history import History, HistoryReader, HistoryUnavailable
from kafka_bridge.producer import ChatProducer, DeliveryFailed
from kafka_bridge.records import ChatRecord
from kafka_bridge.stats import ClusterStats
from kafka_bridge.topics import TopicError, ensure_topic

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0  # a join waits this long for Kafka before it is answered `unavailable`
READY_PROBE_TIMEOUT_S = 2.0
READY_CACHE_S = 1.0  # /readyz probes Kafka at most once a second


class GatewayUnavailable(Exception):
    """Kafka cannot serve this request now (join, history or send)."""


class GatewayStartError(Exception):
    """The gateway cannot start: Kafka unreachable, or the topic missing or wrong."""


class KafkaGateway:
    def __init__(self, config: ChatConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.producer = ChatProducer(config)
        self.bridge: KafkaBridge | None = None
        self.history: HistoryReader | None = None
        self.started_at: float | None = None
        self.stats: ClusterStats | None = None
        self._start_lock = asyncio.Lock()
        self._ready_at = 0.0
        self._ready = False

    @property
    def started(self) -> bool:
        return self.bridge is not None

    async def start(self) -> None:
        """Check the topic (creating it when missing), then start producer, bridge and reader."""
        async with self._start_lock:
            if self.started:
                return
            loop = asyncio.get_running_loop()
            try:
                status = await loop.run_in_executor(None, self._ensure_topic)
            except TopicError as exc:
                raise GatewayStartError(str(exc)) from None
            if status.drift:
                raise GatewayStartError(
                    f"topic {self.config.topic!r} does not match the configuration: "
                    + "; ".join(status.drift)
                    + ". Fix it with `python manage.py chattopic --fix-config`,"
                    + " or point CHAT_TOPIC elsewhere."
                )
            self.producer.start(loop)
            self.history = HistoryReader(self.config, partitions=status.partitions)
            self.history.start()
            bridge = KafkaBridge(self.config, self.dispatcher, partitions=status.partitions)
            bridge.start(loop)
            self.bridge = bridge
            self.started_at = time.time()
            logger.info(
                "gateway started: topic %s, %d partitions, TTL %d ms",
                self.config.topic,
                status.partitions,
                self.config.ttl_ms,
            )

    def _ensure_topic(self):  # type: ignore[no-untyped-def]
        return ensure_topic(
            bootstrap=self.config.bootstrap_servers,
            topic=self.config.topic,
            partitions=self.config.partitions,
            replication_factor=self.config.replication_factor,
            ttl_ms=self.config.ttl_ms,
            create=True,
        )

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Wait (bounded) for in-flight sends to be acked or failed, then stop everything."""
        deadline = time.monotonic() + drain_timeout
        while self.producer.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.producer.close(timeout=max(0.0, deadline - time.monotonic()))
        if self.stats is not None:
            self.stats.stop()
        if self.bridge is not None:
            self.bridge.stop()
        if self.history is not None:
            self.history.stop()

    # -- rooms.ports.ChatBackend --------------------------------------------------------

    def post(self, record: ChatRecord) -> asyncio.Future[tuple[int, int]]:
        return self.producer.send(record)

    async def add_member(self, room: str) -> None:
        assert self.bridge is not None
        try:
            await self.bridge.add_member(room, timeout=JOIN_TIMEOUT_S)
        except BridgeUnavailable as exc:
            raise GatewayUnavailable(str(exc)) from None

    def remove_member(self, room: str) -> None:
        if self.bridge is not None:
            self.bridge.remove_member(room)

    async def read_history(self, room: str, *, since: int | None) -> History:
        assert self.history is not None
        try:
            return await self.history.read(
                room, since=since, limit=self.config.history_limit, timeout=JOIN_TIMEOUT_S
            )
        except HistoryUnavailable as exc:
            raise GatewayUnavailable(str(exc)) from None

    async def kafka_reachable(self) -> bool:
        """Kafka answers a metadata request for the topic (cached for 1 s)."""
        if not self.started:
            return False
        now = time.monotonic()
        if now - self._ready_at < READY_CACHE_S:
            return self._ready
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.producer.list_topic, READY_PROBE_TIMEOUT_S)
            self._ready = True
        except Exception:
            self._ready = False
        self._ready_at = time.monotonic()
        return self._ready


__all__ = ["DeliveryFailed", "GatewayStartError", "GatewayUnavailable", "KafkaGateway"]
