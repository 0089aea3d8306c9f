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

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

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
from rooms.layers import RoomChannelLayer
from rooms.locks import refuses_sends
from rooms.membership import RoomPhase, Subscriptions
from rooms.names import name_is_reserved
from rooms.ports import ChatBackend

logger = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_SERVICE_RESTART = 1012

MAX_IN_FLIGHT_SENDS = 64  # unacknowledged sends per connection; more is answered rate_limited
# A client is closed (1008) after this many refused frames within ABUSE_WINDOW_S.
ABUSE_LIMIT = 50
ABUSE_WINDOW_S = 10.0
# Joins and leaves per connection: each join is a history read from Kafka, so a client
# cannot keep the gateway's history reader busy for everyone else.
JOIN_RATE_PER_S = 2.0
JOIN_BURST = 30
# Bytes a client may leave untaken before replies other than room messages close it (1008):
# a client that sends pings and never reads cannot grow the server's buffers without bound.
CONTROL_BACKLOG_FACTOR = 4
# Layer events handled per wake-up: amortises the wake-up over a burst of room messages.
EVENT_BATCH = 100
# Codes that say something about the server, not about a misbehaving client.
_NOT_ABUSE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.LAGGING, ErrorCode.ROOM_LOCKED})


class ChatConsumer(AsyncWebsocketConsumer):
    config: ChatConfig
    backend: ChatBackend
    channel_layer: RoomChannelLayer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop, with two changes for a busy room: layer events are taken in
        batches (one wake-up per burst, not one task per message), and no per-event
        `close_old_connections` thread hop (this consumer does no DB work of its own)."""
        self.scope = scope
        layer = get_channel_layer(self.channel_layer_alias)
        assert isinstance(layer, RoomChannelLayer)
        self.channel_layer = layer
        self.channel_name = await layer.new_channel()
        self.base_send = send
        from_client: asyncio.Future[Any] | None = None
        from_layer: asyncio.Future[list[Mapping[str, Any]]] | None = None
        try:
            while True:
                if from_client is None:
                    from_client = asyncio.ensure_future(receive())
                if from_layer is None:
                    from_layer = asyncio.ensure_future(layer.receive_batch(self.channel_name, EVENT_BATCH))
                await asyncio.wait((from_client, from_layer), return_when=asyncio.FIRST_COMPLETED)
                if from_client.done():
                    message, from_client = from_client.result(), None
                    await self.dispatch(message)
                if from_layer.done():
                    events, from_layer = from_layer.result(), None
                    for event in events:
                        await self.dispatch(event)
        except StopConsumer:
            pass
        finally:
            for pending in (from_client, from_layer):
                if pending is not None:
                    pending.cancel()

    async def dispatch(self, message: Mapping[str, Any]) -> None:  # type: ignore[override]
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.config = chat_config()
        self.subscriptions = Subscriptions(max_rooms=self.config.max_rooms)
        self.ack_tasks: set[asyncio.Task[None]] = set()
        self.join_tasks: dict[str, asyncio.Task[None]] = {}
        # Rooms for which this connection holds a membership in the bridge (added once
        # add_member returned), so each add is given back exactly once.
        self.bridge_rooms: set[str] = set()
        now = time.monotonic()
        self.bucket = TokenBucket(rate=self.config.send_rate_per_s, burst=self.config.send_burst, now=now)
        self.join_bucket = TokenBucket(rate=JOIN_RATE_PER_S, burst=JOIN_BURST, now=now)
        self.abuse = AbuseMeter(limit=ABUSE_LIMIT, window_s=ABUSE_WINDOW_S, now=now)
        self.transport_backlog: Callable[[int], int] | None = self.scope.get("ephemchat.transport_backlog")
        self.stuck_since: float | None = None
        self.closing = False
        self.draining = False
        user = self.scope.get("user")
        self.account_name: str | None = user.get_username() if user and user.is_authenticated else None
        self.name = self.account_name or guest_name()
        try:
            self.backend = await runtime.started_backend()
        except Exception:
            logger.exception("the gateway could not start")
            await self.accept()  # then close: a refused handshake would read as a bad origin (403)
            await self.close_with(CLOSE_SERVICE_RESTART)
            return
        await self.accept()
        if connections.draining:
            await self.close_with(CLOSE_SERVICE_RESTART)
            return
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
        for room in self.bridge_rooms:
            self.backend.remove_member(room)
        self.bridge_rooms.clear()
        self.channel_layer.forget_channel(self.channel_name)

    # -- client frames ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            if bytes_data is not None and len(bytes_data) > self.config.max_frame_bytes:
                await self.close_with(CLOSE_TOO_BIG)
                return
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
                self.take_join_token(frame.room)
                self.on_join(frame)
            case Leave():
                self.take_join_token(frame.room)
                await self.on_leave(frame)
            case Hello():
                await self.on_hello(frame)
            case Ping():
                await self.send_frame("pong", {"type": "pong"})

    def take_join_token(self, room: str) -> None:
        if not self.join_bucket.try_take(time.monotonic()):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"at most {JOIN_RATE_PER_S:g} joins or leaves a second (bursts of {JOIN_BURST})",
                room=room,
            )

    async def on_hello(self, frame: Hello) -> None:
        if self.account_name is not None:
            raise ProtocolError(ErrorCode.NAME_LOCKED, "signed-in users chat under their account name")
        if await name_is_reserved(frame.name):
            raise ProtocolError(
                ErrorCode.NAME_RESERVED,
                "that name belongs to a registered account; sign in or choose another",
            )
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
        if not task.cancelled() and task.exception() is not None:
            logger.error("a join failed", exc_info=task.exception())
            self.subscriptions.abort_join(room)
            self.release(room)
            failure = ProtocolError(
                ErrorCode.UNAVAILABLE, "the room could not be joined; try again", room=room
            )
            notify = asyncio.ensure_future(self.refuse(failure))
            self.ack_tasks.add(notify)  # kept referenced until done; cancelled on disconnect
            notify.add_done_callback(self.ack_tasks.discard)

    async def complete_join(self, room: str, since: int | None, first_time: bool) -> None:
        try:
            if first_time:
                await self.channel_layer.group_add(room_group(room), self.channel_name)
                await self.backend.add_member(room)
                self.bridge_rooms.add(room)
            history = await self.backend.read_history(room, since=since)
        except GatewayUnavailable as exc:
            self.subscriptions.abort_join(room)
            self.release(room)
            await self.refuse(
                ProtocolError(ErrorCode.UNAVAILABLE, f"cannot read the room now: {exc}", room=room)
            )
            return
        now_ms = int(time.time() * 1000)
        messages = [m for m in history.messages if not is_expired(m.expires_at, now_ms)]
        # A `since` beyond the partition's end (an old offset after the topic was made anew)
        # must not hide what comes next: the cursor stops at the last offset that exists.
        known_since = -1 if since is None else since
        if history.end_offset is not None:
            known_since = min(known_since, history.end_offset - 1)
        cursor = max([known_since, *(m.offset for m in history.messages)])
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
        self.release(frame.room)
        await self.send_frame("left", {"type": "left", "room": frame.room})

    def release(self, room: str) -> None:
        """Give back the room's group and bridge membership (idempotent)."""
        self.channel_layer.discard_member(room_group(room), self.channel_name)
        self.channel_layer.forget_overflow(self.channel_name, room)
        if room in self.bridge_rooms:
            self.bridge_rooms.discard(room)
            self.backend.remove_member(room)

    async def on_send(self, frame: Send) -> None:
        self.subscriptions.require_member(frame.room, frame.client_id)
        if self.draining:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                "this gateway is restarting; the message was not posted, send it again after reconnecting",
                room=frame.room,
                client_id=frame.client_id,
            )
        validate_text(
            frame.text, max_chars=self.config.max_text_chars, room=frame.room, client_id=frame.client_id
        )
        if await refuses_sends(frame.room):
            raise ProtocolError(
                ErrorCode.ROOM_LOCKED,
                "this room is locked by its moderators: messages cannot be posted now",
                room=frame.room,
                client_id=frame.client_id,
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
        ack: dict[str, Any] = {"type": "ack", "room": room}
        if client_id is not None:
            ack["client_id"] = client_id
        ack["offset"] = offset
        await self.send_frame("ack", ack)

    # -- channel layer events ----------------------------------------------------------

    async def chat_message(self, event: Mapping[str, Any]) -> None:
        room = event["room"]
        phase = self.subscriptions.phase(room)
        if phase in (RoomPhase.LIVE, RoomPhase.LAGGING) and await self.too_slow_to_take(room):
            metrics.SKIPPED.inc()
            return
        if self.subscriptions.accept_live(event):
            await self.send_live(event)
        elif self.subscriptions.phase(room) is RoomPhase.LAGGING:
            metrics.SKIPPED.inc()

    async def send_live(self, event: Mapping[str, Any]) -> None:
        now = time.time()
        if is_expired(event["expires_at"], int(now * 1000)):
            return
        metrics.MESSAGE_AGE.observe(max(0.0, now - event["ts"] / 1000))
        await self.send_text("message", event["frame"])

    async def chat_overflow(self, event: Mapping[str, Any]) -> None:
        if self.subscriptions.mark_lagging(event["room"]):
            await self.report_lagging(event["room"])

    async def too_slow_to_take(self, room: str) -> bool:
        """Slow-client policy, on the bytes written to the socket that the client has not
        taken yet. Past `slow_client_bytes` the room goes `lagging`: its live messages are
        skipped, not queued. A client that then does not read its backlog down to half the
        bound within `slow_client_close_s` is closed with 1008."""
        if self.transport_backlog is None:
            return False
        bound = self.config.slow_client_bytes
        backlog = self.transport_backlog(bound)
        now = time.monotonic()
        if self.stuck_since is not None:
            if backlog <= bound // 2:
                self.stuck_since = None
            elif now - self.stuck_since > self.config.slow_client_close_s:
                await self.close_with(CLOSE_POLICY)
                return True
        if backlog <= bound:
            return False
        if self.stuck_since is None:
            self.stuck_since = now
        if self.subscriptions.mark_lagging(room):
            await self.report_lagging(room)
        return True

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
        """Replies other than room messages (those have their own policy, too_slow_to_take)."""
        if self.transport_backlog is not None:
            hard_bound = self.config.slow_client_bytes * CONTROL_BACKLOG_FACTOR
            if self.transport_backlog(hard_bound) > hard_bound:
                await self.close_with(CLOSE_POLICY)
                return
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
        """Gateway shutdown: new sends are refused, in-flight ones end in ack or
        unavailable, then the socket closes with 1012 (reconnect elsewhere)."""
        self.draining = True
        while self.ack_tasks:
            await asyncio.wait(list(self.ack_tasks))
        await self.close_with(CLOSE_SERVICE_RESTART)
