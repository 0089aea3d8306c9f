"""Room → channel-layer group, and the dispatcher that fans Kafka messages into groups."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import MappingProxyType

from prometheus_client import Counter

from kafka_bridge.records import ChatMessage, is_expired
from rooms.frames import encode
from rooms.layers import RoomChannelLayer

EXPIRED_BEFORE_DISPATCH = Counter(
    "ephemchat_expired_before_dispatch_total", "Live messages already expired when the bridge read them"
)


def room_group(room: str) -> str:
    return f"room.{room}"


class GroupDispatcher:
    """Implements kafka_bridge.bridge.Dispatcher: one shared, immutable event per message."""

    def __init__(self, layer: RoomChannelLayer) -> None:
        self.layer = layer

    def dispatch(self, messages: Sequence[ChatMessage]) -> None:
        now_ms = int(time.time() * 1000)
        for message in messages:
            group = room_group(message.room)
            if not self.layer.has_members(group):
                continue
            if is_expired(message.expires_at, now_ms):
                EXPIRED_BEFORE_DISPATCH.inc()
                continue
            event = MappingProxyType(
                {
                    "type": "chat.message",
                    "room": message.room,
                    "offset": message.offset,
                    "ts": message.ts,
                    "expires_at": message.expires_at,
                    "frame": encode({"type": "message", **message.to_wire()}),
                }
            )
            self.layer.group_send_nowait(group, event)
