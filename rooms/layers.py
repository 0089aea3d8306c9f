"""An in-process channel layer that never loses a message silently.

Channels' InMemoryChannelLayer skips a member whose queue is full, evicts members whose
messages expire, and deep-copies each payload per member. This layer instead:

- bounds each channel's inbox (`capacity`) and, when a room message does not fit, counts
  the drop and puts an out-of-band `chat.overflow` notice for that room at the head of
  the inbox, so the consumer can tell its client `lagging`;
- never evicts a member: a channel leaves groups only when its consumer says so;
- hands every member the same payload object (callers pass immutable mappings).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from prometheus_client import Counter

LAYER_DROPS = Counter(
    "ephemchat_layer_drops_total", "Room messages not queued for a connection because its inbox was full"
)


class _Inbox:
    __slots__ = ("messages", "overflowed_rooms", "waiter")

    def __init__(self) -> None:
        self.messages: deque[Mapping[str, Any]] = deque()
        self.overflowed_rooms: dict[str, None] = {}  # ordered set
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class RoomChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self, capacity: int = 1000, expiry: int = 60, group_expiry: int = 86400, **kwargs: Any
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, **kwargs)
        self.capacity = capacity
        self._inboxes: dict[str, _Inbox] = {}
        self._groups: dict[str, set[str]] = {}

    # -- channels --------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        name = f"{prefix}.inmemory!{secrets.token_hex(8)}"
        self._inboxes[name] = _Inbox()
        return name

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        inbox = self._inboxes.get(channel)
        if inbox is None:
            return  # the channel is gone; like a closed socket
        if len(inbox.messages) >= self.capacity:
            raise ChannelFull(channel)
        inbox.messages.append(message)
        inbox.wake()

    async def receive(self, channel: str) -> Mapping[str, Any]:  # type: ignore[override]
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = _Inbox()
        while True:
            if inbox.overflowed_rooms:
                room = next(iter(inbox.overflowed_rooms))
                del inbox.overflowed_rooms[room]
                return {"type": "chat.overflow", "room": room}
            if inbox.messages:
                return inbox.messages.popleft()
            inbox.waiter = asyncio.get_running_loop().create_future()
            try:
                await inbox.waiter
            finally:
                inbox.waiter = None

    async def receive_batch(self, channel: str, limit: int) -> list[Mapping[str, Any]]:
        """Up to `limit` events at once (overflow notices first); waits while there are none."""
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = _Inbox()
        while not inbox.overflowed_rooms and not inbox.messages:
            inbox.waiter = asyncio.get_running_loop().create_future()
            try:
                await inbox.waiter
            finally:
                inbox.waiter = None
        batch: list[Mapping[str, Any]] = [
            {"type": "chat.overflow", "room": r} for r in inbox.overflowed_rooms
        ]
        inbox.overflowed_rooms.clear()
        messages = inbox.messages
        for _ in range(min(limit, len(messages))):
            batch.append(messages.popleft())
        return batch

    def forget_overflow(self, channel: str, room: str) -> None:
        """Drop a pending overflow notice of `room` (the channel left it: the notice is stale)."""
        inbox = self._inboxes.get(channel)
        if inbox is not None:
            inbox.overflowed_rooms.pop(room, None)

    def forget_channel(self, channel: str) -> None:
        """The consumer is gone: drop its inbox and its group memberships."""
        self._inboxes.pop(channel, None)
        for group in [g for g, members in self._groups.items() if channel in members]:
            self.discard_member(group, channel)

    # -- groups ----------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self._groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.discard_member(group, channel)

    def discard_member(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._groups[group]

    async def group_send(self, group: str, message: Mapping[str, Any]) -> None:  # type: ignore[override]
        self.group_send_nowait(group, message)

    def has_members(self, group: str) -> bool:
        return group in self._groups

    def group_send_nowait(self, group: str, message: Mapping[str, Any]) -> int:
        """Queue `message` for every member; returns how many could not take it."""
        dropped = 0
        for channel in self._groups.get(group, ()):
            inbox = self._inboxes.get(channel)
            if inbox is None:
                continue
            if len(inbox.messages) >= self.capacity:
                dropped += 1
                room = message.get("room")
                if isinstance(room, str):
                    inbox.overflowed_rooms[room] = None
            else:
                inbox.messages.append(message)
            inbox.wake()
        if dropped:
            LAYER_DROPS.inc(dropped)
        return dropped

    def channel_count(self) -> int:
        return len(self._inboxes)

    async def flush(self) -> None:
        self._inboxes.clear()
        self._groups.clear()

    async def close(self) -> None:
        pass
