"""The WebSocket transport: decode a frame, apply one rule or service, encode the reply.

One `ChatConsumer` per connection. It may be in many rooms. Live room messages arrive
from the channel layer as shared, pre-encoded events (`chat.message`); Kafka is reached
only through a `ChatBackend`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from ephemchat import runtime
from ephemchat.config import ChatConfig, chat_config
from kafka_bridge.gateway import GatewayUnavailable
from kafka_bridge.producer import DeliveryFailed
from kafka_bridge.records import ChatRecord, is_expired
from rooms import metrics
from rooms.connections import connections
from rooms.domain import AbuseMeter, TokenBucket, guest_name, validate_text
from rooms.errors import ErrorCode, ProtocolError
from rooms.frames import ClientFrame, Hello, Join, Leave, Ping, Send, decode_client_frame, encode, error_frame
from rooms.groups import room_group
from rooms.membership import Subscriptions
from rooms.ports import ChatBackend

logger = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_SERVICE_RESTART = 1012

MAX_IN_FLIGHT_SENDS = 64  # unacknowledged sends per connection; more is answered rate_limited
# A client is closed (1008) after this many refused frames within ABUSE_WINDOW_S.
ABUSE_LIMIT = 50
ABUSE_WINDOW_S = 10.0
# Bytes written to a client's socket but not yet taken by it. Above the soft bound its
# rooms go `lagging` (live messages are skipped); stuck above it this long, it is closed.
SOFT_BACKLOG_BYTES = 1 << 20
STUCK_CLOSE_AFTER_S = 30.0
# Codes that say something about the server, not about a misbehaving client.
_NOT_ABUSE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.LAGGING, ErrorCode.ROOM_LOCKED})


class ChatConsumer(AsyncWebsocketConsumer):
    config: ChatConfig
    backend: ChatBackend

    async def connect(self) -> None:
        self.config = chat_config()
        self.subscriptions = Subscriptions(max_rooms=self.config.max_rooms)
        self.ack_tasks: set[asyncio.Task[None]] = set()
        self.join_tasks: dict[str, asyncio.Task[None]] = {}
        now = time.monotonic()
        self.bucket = TokenBucket(rate=self.config.send_rate_per_s, burst=self.config.send_burst, now=now)
        self.abuse = AbuseMeter(limit=ABUSE_LIMIT, window_s=ABUSE_WINDOW_S, now=now)
        self.transport_backlog: Callable[[], int] | None = self.scope.get("ephemchat.transport_backlog")
        self.stuck_since: float | None = None
        self.closing = False
        user = self.scope.get("user")
        self.account_name: str | None = user.get_username() if user and user.is_authenticated else None
        self.name = self.account_name or guest_name()
        try:
            self.backend = await runtime.started_backend()
        except Exception:
            logger.exception("the gateway could not start")
            await self.close(code=CLOSE_SERVICE_RESTART)
            return
        if connections.draining:
            await self.close(code=CLOSE_SERVICE_RESTART)
            return
        await self.accept()
        connections.add(self)
        metrics.CONNECTIONS.inc()
        await self.send_frame("welcome", self.welcome())

    def welcome(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "name": self.name,
            "ttl_ms": self.config.ttl_ms,
            "history_limit": self.config.history_limit,
            "limits": self.config.limits,
        }

    async def disconnect(self, code: int) -> None:
        if self not in connections:  # never accepted
            return
        connections.discard(self)
        metrics.CONNECTIONS.dec()
        for task in [*self.ack_tasks, *self.join_tasks.values()]:
            task.cancel()
        for room in self.subscriptions.rooms():
            self.backend.remove_member(room)
        self.channel_layer.forget_channel(self.channel_name)

    # -- client frames ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.refuse(ProtocolError(ErrorCode.BAD_JSON, "frames are UTF-8 JSON text, not binary"))
            return
        if len(text_data) > self.config.max_frame_bytes or (
            len(text_data) * 4 > self.config.max_frame_bytes
            and len(text_data.encode("utf-8")) > self.config.max_frame_bytes
        ):
            await self.close_with(CLOSE_TOO_BIG)
            return
        try:
            frame = decode_client_frame(text_data)
            metrics.FRAMES_IN.labels(type(frame).__name__.lower()).inc()
            await self.handle(frame)
        except ProtocolError as error:
            await self.refuse(error)

    async def handle(self, frame: ClientFrame) -> None:
        match frame:
            case Send():
                await self.on_send(frame)
            case Join():
                self.on_join(frame)
            case Leave():
                await self.on_leave(frame)
            case Hello():
                await self.on_hello(frame)
            case Ping():
                await self.send_frame("pong", {"type": "pong"})

    async def on_hello(self, frame: Hello) -> None:
        if self.account_name is not None:
            raise ProtocolError(ErrorCode.NAME_LOCKED, "signed-in users chat under their account name")
        self.name = frame.name
        await self.send_frame("welcome", self.welcome())

    def on_join(self, frame: Join) -> None:
        first_time = self.subscriptions.begin_join(frame.room)
        task = asyncio.ensure_future(self.complete_join(frame.room, frame.since, first_time))
        self.join_tasks[frame.room] = task
        task.add_done_callback(functools.partial(self._join_done, frame.room))

    def _join_done(self, room: str, task: asyncio.Future[None]) -> None:
        if self.join_tasks.get(room) is task:
            del self.join_tasks[room]

    async def complete_join(self, room: str, since: int | None, first_time: bool) -> None:
        try:
            if first_time:
                await self.channel_layer.group_add(room_group(room), self.channel_name)
                await self.backend.add_member(room)
            history = await self.backend.read_history(room, since=since)
        except GatewayUnavailable as exc:
            self.subscriptions.abort_join(room)
            if first_time:
                await self.channel_layer.group_discard(room_group(room), self.channel_name)
            await self.refuse(
                ProtocolError(ErrorCode.UNAVAILABLE, f"cannot read the room now: {exc}", room=room)
            )
            return
        except asyncio.CancelledError:
            if first_time:
                self.backend.remove_member(room)
            raise
        now_ms = int(time.time() * 1000)
        messages = [m for m in history.messages if not is_expired(m.expires_at, now_ms)]
        cursor = max([since if since is not None else -1, *(m.offset for m in history.messages)])
        self.subscriptions.set_history_cursor(room, cursor)
        await self.send_frame("joined", {"type": "joined", "room": room})
        await self.send_frame(
            "history",
            {
                "type": "history",
                "room": room,
                "messages": [m.to_wire() for m in messages],
                "truncated": history.truncated,
            },
        )
        # Live messages that came while history was read; no await between the last
        # empty drain and go_live, so none can slip past.
        while pending := self.subscriptions.drain_pending(room):
            for event in pending:
                await self.send_live(event)
        if not self.subscriptions.go_live(room):
            await self.report_lagging(room)

    async def on_leave(self, frame: Leave) -> None:
        self.subscriptions.leave(frame.room)
        join = self.join_tasks.pop(frame.room, None)
        if join is not None:
            join.cancel()
        else:
            self.backend.remove_member(frame.room)
        await self.channel_layer.group_discard(room_group(frame.room), self.channel_name)
        await self.send_frame("left", {"type": "left", "room": frame.room})

    async def on_send(self, frame: Send) -> None:
        self.subscriptions.require_member(frame.room, frame.client_id)
        validate_text(
            frame.text, max_chars=self.config.max_text_chars, room=frame.room, client_id=frame.client_id
        )
        if len(self.ack_tasks) >= MAX_IN_FLIGHT_SENDS or not self.bucket.try_take(time.monotonic()):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"at most {self.config.send_rate_per_s:g} messages a second"
                f" (bursts of {self.config.send_burst})",
                room=frame.room,
                client_id=frame.client_id,
            )
        delivery = self.backend.post(
            ChatRecord(room=frame.room, user=self.name, text=frame.text, client_id=frame.client_id)
        )
        task = asyncio.ensure_future(self.ack_when_delivered(delivery, frame.room, frame.client_id))
        self.ack_tasks.add(task)
        task.add_done_callback(self.ack_tasks.discard)

    async def ack_when_delivered(
        self, delivery: asyncio.Future[tuple[int, int]], room: str, client_id: str | None
    ) -> None:
        try:
            _partition, offset = await delivery
        except DeliveryFailed as exc:
            await self.refuse(
                ProtocolError(
                    ErrorCode.UNAVAILABLE,
                    f"Kafka did not confirm the message; it was not posted ({exc})",
                    room=room,
                    client_id=client_id,
                )
            )
            return
        ack: dict[str, Any] = {"type": "ack", "room": room, "offset": offset}
        if client_id is not None:
            ack["client_id"] = client_id
        await self.send_frame("ack", ack)

    # -- channel layer events ----------------------------------------------------------

    async def chat_message(self, event: Mapping[str, Any]) -> None:
        if not self.subscriptions.accept_live(event):
            return
        if self.transport_backlog is not None and self.transport_backlog() > SOFT_BACKLOG_BYTES:
            await self.client_too_slow(event["room"])
            return
        self.stuck_since = None
        await self.send_live(event)

    async def send_live(self, event: Mapping[str, Any]) -> None:
        now = time.time()
        if is_expired(event["expires_at"], int(now * 1000)):
            return
        metrics.MESSAGE_AGE.observe(max(0.0, now - event["ts"] / 1000))
        await self.send_text("message", event["frame"])

    async def chat_overflow(self, event: Mapping[str, Any]) -> None:
        if self.subscriptions.mark_lagging(event["room"]):
            await self.report_lagging(event["room"])

    async def client_too_slow(self, room: str) -> None:
        now = time.monotonic()
        if self.stuck_since is None:
            self.stuck_since = now
        elif now - self.stuck_since > STUCK_CLOSE_AFTER_S:
            await self.close_with(CLOSE_POLICY)
            return
        if self.subscriptions.mark_lagging(room):
            await self.report_lagging(room)

    async def report_lagging(self, room: str) -> None:
        metrics.LAGGING.inc()
        await self.refuse(
            ProtocolError(
                ErrorCode.LAGGING,
                "this connection fell behind; re-join with `since` to get what was skipped",
                room=room,
            )
        )

    # -- replies and closing -----------------------------------------------------------

    async def refuse(self, error: ProtocolError) -> None:
        metrics.ERRORS.labels(str(error.code)).inc()
        await self.send_text("error", error_frame(error))
        if error.code not in _NOT_ABUSE and self.abuse.record(time.monotonic()):
            await self.close_with(CLOSE_POLICY)

    async def send_frame(self, kind: str, frame: dict[str, Any]) -> None:
        await self.send_text(kind, encode(frame))

    async def send_text(self, kind: str, text: str) -> None:
        if self.closing:
            return
        metrics.FRAMES_OUT.labels(kind).inc()
        await self.send(text_data=text)

    async def close_with(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            metrics.CLOSES.labels(str(code)).inc()
            await self.close(code=code)

    async def drain(self) -> None:
        """Gateway shutdown: let in-flight sends end in ack or unavailable, then close 1012."""
        if self.ack_tasks:
            await asyncio.wait(list(self.ack_tasks))
        await self.close_with(CLOSE_SERVICE_RESTART)
