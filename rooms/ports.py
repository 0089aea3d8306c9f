"""What the chat consumers need from the message bus. `kafka_bridge.gateway.KafkaGateway`
implements it; consumer tests can pass their own."""

from __future__ import annotations

import asyncio
from typing import Protocol

from kafka_bridge.history import History
from kafka_bridge.records import ChatRecord


class ChatBackend(Protocol):
    def post(self, record: ChatRecord) -> asyncio.Future[tuple[int, int]]:
        """Produce a record; resolves to (partition, offset) once Kafka acked it."""

    async def add_member(self, room: str) -> None:
        """A member of `room` arrived on this gateway; returns once the room is read live."""

    def remove_member(self, room: str) -> None: ...

    async def read_history(self, room: str, *, since: int | None) -> History: ...
