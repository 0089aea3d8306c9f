"""ChatConsumer over WebsocketCommunicator, with a fake ChatBackend (no Kafka, no network).

Live messages come the way they do in production: GroupDispatcher → RoomChannelLayer →
consumer. Only the Kafka side (rooms.ports.ChatBackend) is replaced.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from ephemchat import runtime
from ephemchat.config import chat_config, reset_chat_config
from kafka_bridge.gateway import GatewayUnavailable
from kafka_bridge.history import History
from kafka_bridge.producer import DeliveryFailed
from kafka_bridge.records import ChatMessage, ChatRecord, encode_record
from rooms import consumers
from rooms.connections import ConnectionRegistry
from rooms.consumers import ABUSE_LIMIT, ChatConsumer
from rooms.groups import GroupDispatcher, room_group

HistoryHook = Callable[[str, int | None], Awaitable[None]]


class FakeBackend:
    """A ChatBackend that keeps what it is asked, and answers as configured."""

    def __init__(self) -> None:
        self.records: list[ChatRecord] = []
        self.next_offset = 100
        self.fail_with: Exception | None = None
        self.histories: dict[str, History] = {}
        self.history_calls: list[tuple[str, int | None]] = []
        self.history_hook: HistoryHook | None = None
        self.added: Counter[str] = Counter()
        self.removed: Counter[str] = Counter()

    def post(self, record: ChatRecord) -> asyncio.Future[tuple[int, int]]:
        encode_record(record)  # as ChatProducer.send does before producing
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.records.append(record)
        if self.fail_with is not None:
            future.set_exception(self.fail_with)
        else:
            future.set_result((0, self.next_offset))
            self.next_offset += 1
        return future

    async def add_member(self, room: str) -> None:
        self.added[room] += 1

    def remove_member(self, room: str) -> None:
        self.removed[room] += 1

    async def read_history(self, room: str, *, since: int | None) -> History:
        self.history_calls.append((room, since))
        if self.history_hook is not None:
            await self.history_hook(room, since)
        return self.histories.get(room, History(messages=[], truncated=False))


def now_ms() -> int:
    return int(time.time() * 1000)


def message(
    room: str, offset: int, *, text: str = "hi", age_ms: int = 0, ttl_ms: int = 120_000
) -> ChatMessage:
    ts = now_ms() - age_ms
    return ChatMessage(room=room, offset=offset, user="bob", text=text, ts=ts, expires_at=ts + ttl_ms)


def dispatch(*messages: ChatMessage) -> None:
    GroupDispatcher(get_channel_layer()).dispatch(list(messages))


@pytest.fixture(autouse=True)
def fresh_config() -> Iterator[None]:
    reset_chat_config()
    yield
    reset_chat_config()


LOCKED_ROOMS: set[str] = set()
ACCOUNT_NAMES: set[str] = {"admin"}


@pytest.fixture(autouse=True)
def account_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered accounts without a database: these names are reserved for their owners."""

    async def name_is_reserved(name: str) -> bool:
        return name.lower() in ACCOUNT_NAMES

    monkeypatch.setattr("rooms.consumers.name_is_reserved", name_is_reserved)


@pytest.fixture(autouse=True)
def room_locks(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Room locks without a database: the rooms in the yielded set refuse sends."""
    LOCKED_ROOMS.clear()

    async def refuses_sends(room: str) -> bool:
        return room in LOCKED_ROOMS

    monkeypatch.setattr("rooms.consumers.refuses_sends", refuses_sends)
    yield LOCKED_ROOMS


@pytest.fixture
async def backend(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBackend]:
    fake = FakeBackend()

    async def started_backend() -> FakeBackend:
        return fake

    monkeypatch.setattr(runtime, "started_backend", started_backend)
    # A registry of this test's own, so a consumer that crashed is not left in the global one.
    monkeypatch.setattr(consumers, "connections", ConnectionRegistry())
    layer = get_channel_layer()
    await layer.flush()
    yield fake
    await layer.flush()


@pytest.fixture
def limits(settings: Any) -> Callable[..., None]:
    """Change chat settings for this test (pytest-django restores them)."""

    def apply(**values: Any) -> None:
        for name, value in values.items():
            setattr(settings, name, value)
        reset_chat_config()

    return apply


class Client:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator
        self.welcome: dict[str, Any] = {}

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 1) -> dict[str, Any]:
        # Wait without receive_output's timeout, which cancels the application.
        if await self.ws.receive_nothing(timeout, interval=0.005):
            if self.ws.future.done():
                self.ws.future.result()  # the consumer crashed: raise its exception
            raise AssertionError(f"no frame within {timeout} s")
        frame = await self.ws.receive_json_from()
        assert isinstance(frame, dict)
        return frame

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = await self.recv()
        assert frame["type"] == kind, frame
        for key, value in fields.items():
            assert frame.get(key) == value, (key, frame)
        return frame

    async def join(self, room: str, since: int | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "join", "room": room}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        await self.expect("joined", room=room)
        return await self.expect("history", room=room)

    async def nothing(self, timeout: float = 0.1) -> None:
        assert await self.ws.receive_nothing(timeout), "an unexpected frame arrived"

    async def closed_with(self) -> int:
        while True:
            assert not await self.ws.receive_nothing(1, interval=0.005), "the connection was not closed"
            output = await self.ws.receive_output()
            if output["type"] == "websocket.close":
                return int(output.get("code", 1000))


@pytest.fixture
async def connect(backend: FakeBackend) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    opened: list[Client] = []

    async def open_client() -> Client:
        app = URLRouter([path("ws/chat/", ChatConsumer.as_asgi())])
        communicator = WebsocketCommunicator(app, "/ws/chat/")
        connected, _ = await communicator.connect()
        assert connected
        client = Client(communicator)
        opened.append(client)
        client.welcome = await client.expect("welcome")
        return client

    yield open_client
    for client in opened:
        try:
            await client.ws.disconnect()
        except (Exception, asyncio.CancelledError):
            pass  # the consumer crashed or was stopped; the test has reported it


# -- welcome and hello -------------------------------------------------------------------


async def test_welcome_is_the_first_frame(connect: Callable[[], Awaitable[Client]]) -> None:
    """The first frame has a guest name, ttl_ms, history_limit and the limits."""
    client = await connect()
    config = chat_config()
    welcome = client.welcome
    assert re.fullmatch(r"guest-\d{4}", welcome["name"])
    assert welcome["ttl_ms"] == config.ttl_ms == int(float(config.ttl_ms))
    assert welcome["history_limit"] == config.history_limit
    limits = welcome["limits"]
    assert limits["max_text_chars"] == config.max_text_chars
    assert limits["max_rooms"] == config.max_rooms
    assert limits["send_rate"] == {"per_second": config.send_rate_per_s, "burst": config.send_burst}


async def test_welcome_reflects_the_settings(
    connect: Callable[[], Awaitable[Client]], limits: Callable[..., None]
) -> None:
    """ttl_ms, history_limit and limits come from the settings of PROTOCOL.md section 4."""
    limits(CHAT_MESSAGE_TTL=30, CHAT_HISTORY_LIMIT=7, CHAT_MAX_ROOMS=3, CHAT_MAX_TEXT_CHARS=99)
    welcome = (await connect()).welcome
    assert (welcome["ttl_ms"], welcome["history_limit"]) == (30_000, 7)
    assert (welcome["limits"]["max_rooms"], welcome["limits"]["max_text_chars"]) == (3, 99)


async def test_hello_changes_the_name_and_resends_welcome(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """An accepted hello answers a new welcome with the trimmed name, used for later sends."""
    client = await connect()
    await client.send({"type": "hello", "name": "  alice  "})
    welcome = await client.expect("welcome", name="alice")
    assert welcome["ttl_ms"] == client.welcome["ttl_ms"]
    await client.join("lobby")
    await client.send({"type": "send", "room": "lobby", "text": "hi"})
    await client.expect("ack")
    assert backend.records[-1].user == "alice"


async def test_bad_hello_keeps_the_name(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """A refused hello is bad_name and the old name stays."""
    client = await connect()
    await client.send({"type": "hello", "name": "x" * 33})
    await client.expect("error", code="bad_name")
    await client.join("lobby")
    await client.send({"type": "send", "room": "lobby", "text": "hi"})
    await client.expect("ack")
    assert backend.records[-1].user == client.welcome["name"]


# -- join, history and the seam ----------------------------------------------------------


async def test_join_answers_joined_then_history(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """join → joined, then history (oldest first, wire format, truncated passed on)."""
    history = [message("lobby", 10, text="one"), message("lobby", 11, text="two")]
    backend.histories["lobby"] = History(messages=history, truncated=True)
    client = await connect()
    await client.send({"type": "join", "room": "lobby"})
    assert await client.recv() == {"type": "joined", "room": "lobby"}
    frame = await client.recv()
    assert frame == {
        "type": "history",
        "room": "lobby",
        "messages": [m.to_wire() for m in history],
        "truncated": True,
    }
    assert backend.history_calls == [("lobby", None)]
    assert backend.added["lobby"] == 1


async def test_join_with_since_asks_history_after_that_offset(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """join with since passes the offset to the history read."""
    client = await connect()
    history = await client.join("lobby", since=1234)
    assert history["messages"] == [] and history["truncated"] is False
    assert backend.history_calls == [("lobby", 1234)]


async def test_history_leaves_out_expired_messages(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """A history message whose expires_at has passed is not in the history frame."""
    expired = message("lobby", 10, age_ms=200_000)
    fresh = message("lobby", 11)
    backend.histories["lobby"] = History(messages=[expired, fresh], truncated=False)
    client = await connect()
    history = await client.join("lobby")
    assert [m["offset"] for m in history["messages"]] == [11]


async def test_live_message_after_join_without_duplicating_history(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """Live messages follow history; an offset already in history is not sent again."""
    backend.histories["lobby"] = History(
        messages=[message("lobby", 10), message("lobby", 11)], truncated=False
    )
    client = await connect()
    await client.join("lobby")
    dispatch(message("lobby", 11), message("lobby", 12, text="new"))
    live = await client.expect("message", room="lobby", offset=12, text="new", user="bob")
    assert set(live) == {"type", "room", "offset", "user", "text", "ts", "expires_at"}
    await client.nothing()


async def test_live_messages_during_the_history_read_are_held_then_sent_once(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """Messages arriving while history is read come after history, without the ones it covered."""
    backend.histories["lobby"] = History(
        messages=[message("lobby", 10), message("lobby", 11)], truncated=False
    )

    async def live_during_read(room: str, since: int | None) -> None:
        dispatch(message(room, 11), message(room, 12))
        await asyncio.sleep(0.05)  # the consumer takes them from the layer meanwhile

    backend.history_hook = live_during_read
    client = await connect()
    history = await client.join("lobby")
    assert [m["offset"] for m in history["messages"]] == [10, 11]
    await client.expect("message", offset=12)
    backend.history_hook = None
    dispatch(message("lobby", 12), message("lobby", 13))
    await client.expect("message", offset=13)
    await client.nothing()


async def test_already_joined(connect: Callable[[], Awaitable[Client]]) -> None:
    """A second join for the same room is already_joined with the room."""
    client = await connect()
    await client.join("lobby")
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("error", code="already_joined", room="lobby")


async def test_too_many_rooms(connect: Callable[[], Awaitable[Client]], limits: Callable[..., None]) -> None:
    """Joining more than max_rooms rooms is too_many_rooms, naming the room refused."""
    limits(CHAT_MAX_ROOMS=2)
    client = await connect()
    await client.join("a")
    await client.join("b")
    await client.send({"type": "join", "room": "c"})
    await client.expect("error", code="too_many_rooms", room="c")


async def test_join_history_unavailable_is_an_error_and_releases_the_room(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """A history read that fails answers unavailable, and the backend membership taken is given back.

    BUG: rooms/consumers.py complete_join, `except GatewayUnavailable`: after
    add_member() succeeded and read_history() failed, it calls abort_join and
    group_discard but never backend.remove_member(room), so the gateway keeps reading
    the room's partition for a member that does not exist.
    """

    async def fail(room: str, since: int | None) -> None:
        raise GatewayUnavailable("Kafka did not answer the history read in time")

    backend.history_hook = fail
    client = await connect()
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("error", code="unavailable", room="lobby")
    await client.send({"type": "send", "room": "lobby", "text": "hi"})
    await client.expect("error", code="not_joined")
    assert backend.added["lobby"] == 1
    assert backend.removed["lobby"] == 1


async def test_disconnect_while_joining_releases_the_room_once(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """Closing during a join gives the backend membership back exactly once.

    BUG: disconnect() cancels the join task (whose CancelledError handler calls
    remove_member) and then also calls remove_member for every room in subscriptions,
    including the JOINING one: two removes for one add. The bridge's member count for the
    room then drops for another connection of the same gateway, whose partition can be
    released while it is still in the room.
    """
    stalled = asyncio.Event()

    async def stall(room: str, since: int | None) -> None:
        await stalled.wait()

    backend.history_hook = stall
    client = await connect()
    await client.send({"type": "join", "room": "lobby"})
    await asyncio.sleep(0.05)
    await client.ws.disconnect()
    await asyncio.sleep(0.05)
    assert backend.added["lobby"] == 1
    assert backend.removed["lobby"] == 1


# -- send and ack ------------------------------------------------------------------------


async def test_send_is_acked_with_offset_and_client_id(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """send → one ack with room, client_id and the Kafka offset; the server sets the user."""
    client = await connect()
    await client.join("lobby")
    await client.send({"type": "send", "room": "lobby", "text": "hi", "client_id": "c-17", "user": "mallory"})
    assert await client.recv() == {"type": "ack", "room": "lobby", "client_id": "c-17", "offset": 100}
    assert backend.records == [
        ChatRecord(room="lobby", user=client.welcome["name"], text="hi", client_id="c-17")
    ]
    await client.send({"type": "send", "room": "lobby", "text": "again"})
    assert await client.recv() == {"type": "ack", "room": "lobby", "offset": 101}
    await client.nothing()


async def test_delivery_failure_is_unavailable_without_ack(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """When Kafka does not confirm, the send ends in one error unavailable (room, client_id) and no ack."""
    client = await connect()
    await client.join("lobby")
    backend.fail_with = DeliveryFailed("Local: Message timed out")
    await client.send({"type": "send", "room": "lobby", "text": "hi", "client_id": "c-1"})
    error = await client.expect("error", code="unavailable", room="lobby", client_id="c-1")
    assert error["detail"]
    await client.nothing()


async def test_rate_limited_after_the_burst(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend, limits: Callable[..., None]
) -> None:
    """Past the burst, a send is rate_limited (room, client_id) and nothing is posted."""
    limits(CHAT_SEND_BURST=3, CHAT_SEND_RATE=0.001)
    client = await connect()
    await client.join("lobby")
    for i in range(4):
        await client.send({"type": "send", "room": "lobby", "text": f"m{i}", "client_id": f"c-{i}"})
    frames = [await client.recv() for _ in range(4)]
    assert [f["type"] for f in frames] == ["ack", "ack", "ack", "error"]
    assert frames[3]["code"] == "rate_limited"
    assert (frames[3]["room"], frames[3]["client_id"]) == ("lobby", "c-3")
    assert [r.text for r in backend.records] == ["m0", "m1", "m2"]


async def test_send_to_a_room_not_joined(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """send for a room this connection is not in is not_joined (room, client_id); nothing is posted."""
    client = await connect()
    await client.send({"type": "send", "room": "lobby", "text": "hi", "client_id": "c-1"})
    await client.expect("error", code="not_joined", room="lobby", client_id="c-1")
    assert backend.records == []


async def test_leave_a_room_not_joined(connect: Callable[[], Awaitable[Client]]) -> None:
    """leave for a room this connection is not in is not_joined."""
    client = await connect()
    await client.send({"type": "leave", "room": "lobby"})
    await client.expect("error", code="not_joined", room="lobby")


@pytest.mark.parametrize(("text", "code"), [("   ", "bad_text"), ("x" * 2001, "too_long")])
async def test_bad_text_is_refused(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend, text: str, code: str
) -> None:
    """Blank text is bad_text and text above max_text_chars too_long, with room and client_id."""
    client = await connect()
    await client.join("lobby")
    await client.send({"type": "send", "room": "lobby", "text": text, "client_id": "c-1"})
    await client.expect("error", code=code, room="lobby", client_id="c-1")
    assert backend.records == []


async def test_text_with_a_lone_surrogate_is_refused_not_fatal(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """A JSON-escaped lone surrogate in text gets an error frame; the connection carries on.

    BUG: decode_client_frame and validate_text accept "\\ud800"; encode_record (called by
    ChatProducer.send) raises UnicodeEncodeError, which nothing catches: the consumer dies.
    """
    client = await connect()
    await client.join("lobby")
    await client.send('{"type":"send","room":"lobby","text":"hi \\ud800","client_id":"c-1"}')
    error = await client.expect("error", room="lobby", client_id="c-1")
    assert error["code"] in {"bad_text", "bad_frame"}
    await client.send({"type": "ping"})
    await client.expect("pong")


# -- leave and isolation -----------------------------------------------------------------


async def test_leave_stops_the_room(connect: Callable[[], Awaitable[Client]], backend: FakeBackend) -> None:
    """leave → left; no more messages of that room; the backend membership is given back."""
    client = await connect()
    await client.join("lobby")
    await client.send({"type": "leave", "room": "lobby"})
    assert await client.recv() == {"type": "left", "room": "lobby"}
    assert not get_channel_layer().has_members(room_group("lobby"))
    dispatch(message("lobby", 1))
    await client.nothing()
    assert backend.removed["lobby"] == backend.added["lobby"] == 1


async def test_leave_during_a_rejoin_releases_the_room(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """Leaving while a re-join (after lagging) reads history gives the backend membership back.

    BUG: rooms/consumers.py on_leave cancels the join task instead of calling
    remove_member, and complete_join's CancelledError handler only removes when
    first_time; a re-join has first_time False, so nobody calls remove_member.
    """
    client = await connect()
    await client.join("lobby")
    get_channel_layer().group_send_nowait(room_group("lobby"), {"type": "chat.overflow", "room": "lobby"})
    await client.expect("error", code="lagging", room="lobby")
    stalled = asyncio.Event()

    async def stall(room: str, since: int | None) -> None:
        await stalled.wait()

    backend.history_hook = stall
    await client.send({"type": "join", "room": "lobby", "since": 5})
    await asyncio.sleep(0.05)
    await client.send({"type": "leave", "room": "lobby"})
    await client.expect("left", room="lobby")
    await asyncio.sleep(0.05)
    assert backend.added["lobby"] == 1
    assert backend.removed["lobby"] == 1


async def test_rooms_are_isolated(connect: Callable[[], Awaitable[Client]]) -> None:
    """A connection never receives a message of a room it is not in."""
    alice, bob = await connect(), await connect()
    await alice.join("a")
    await bob.join("b")
    dispatch(message("b", 1, text="for b"))
    await bob.expect("message", room="b", text="for b")
    await alice.nothing()
    dispatch(message("a", 2, text="for a"))
    await alice.expect("message", room="a", text="for a")
    await bob.nothing()


async def test_expired_live_message_is_not_delivered(connect: Callable[[], Awaitable[Client]]) -> None:
    """A live message whose expires_at has passed never reaches the client, even if the layer carries it."""
    client = await connect()
    await client.join("lobby")
    dispatch(message("lobby", 1, age_ms=200_000))  # the dispatcher drops it
    stale = message("lobby", 2, age_ms=200_000)
    event = {
        "type": "chat.message",
        "room": "lobby",
        "offset": 2,
        "ts": stale.ts,
        "expires_at": stale.expires_at,
        "frame": json.dumps({"type": "message", **stale.to_wire()}),
    }
    get_channel_layer().group_send_nowait(room_group("lobby"), event)  # the consumer drops it
    dispatch(message("lobby", 3))
    await client.expect("message", offset=3)
    await client.nothing()


async def test_overflow_is_reported_as_lagging_and_rejoin_resumes(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """A layer overflow tells the client lagging; live messages are skipped until a re-join with since."""
    client = await connect()
    await client.join("lobby")
    dispatch(message("lobby", 11))
    await client.expect("message", offset=11)
    get_channel_layer().group_send_nowait(room_group("lobby"), {"type": "chat.overflow", "room": "lobby"})
    await client.expect("error", code="lagging", room="lobby")
    dispatch(message("lobby", 12))
    await client.nothing()
    backend.histories["lobby"] = History(messages=[message("lobby", 12)], truncated=False)
    history = await client.join("lobby", since=11)
    assert [m["offset"] for m in history["messages"]] == [12]
    assert backend.history_calls[-1] == ("lobby", 11)
    dispatch(message("lobby", 12), message("lobby", 13))
    await client.expect("message", offset=13)
    await client.nothing()
    assert backend.added["lobby"] == 1  # a re-join keeps the membership it had


async def test_overflow_while_joining_is_reported_as_lagging(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend
) -> None:
    """An overflow of the room while its history is read ends the join in lagging.

    BUG: chat_overflow → Subscriptions.mark_lagging ignores a JOINING room, so the
    dropped live message is silently missing (guarantee 1).
    """

    async def overflow_during_read(room: str, since: int | None) -> None:
        get_channel_layer().group_send_nowait(room_group(room), {"type": "chat.overflow", "room": room})
        await asyncio.sleep(0.05)

    backend.history_hook = overflow_during_read
    client = await connect()
    await client.join("lobby")
    await client.expect("error", code="lagging", room="lobby")


# -- transport rules ---------------------------------------------------------------------


async def test_ping_pong(connect: Callable[[], Awaitable[Client]]) -> None:
    """ping is answered with pong."""
    client = await connect()
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}


async def test_a_bad_frame_does_not_close_the_connection(connect: Callable[[], Awaitable[Client]]) -> None:
    """A bad frame is answered with an error and the connection carries on."""
    client = await connect()
    await client.send("not json")
    await client.expect("error", code="bad_json")
    await client.send({"type": "nope"})
    await client.expect("error", code="bad_frame")
    await client.send({"type": "join", "room": "Lobby"})
    await client.expect("error", code="bad_room", room="Lobby")
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_binary_frame_is_an_error(connect: Callable[[], Awaitable[Client]]) -> None:
    """A binary frame is refused with an error (frames are UTF-8 JSON text); the connection stays."""
    client = await connect()
    await client.ws.send_to(bytes_data=b'{"type":"ping"}')
    await client.expect("error", code="bad_json")
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_deeply_nested_json_is_an_error_not_a_crash(connect: Callable[[], Awaitable[Client]]) -> None:
    """3 KB of '[' is a bad_json error, and the connection carries on.

    BUG: json.loads raises RecursionError, which decode_client_frame does not catch.
    """
    client = await connect()
    await client.send("[" * 3000)
    await client.expect("error", code="bad_json")
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_frame_over_the_limit_closes_1009(connect: Callable[[], Awaitable[Client]]) -> None:
    """A frame larger than max_frame_bytes closes the connection with 1009."""
    client = await connect()
    await client.send("x" * (chat_config().max_frame_bytes + 1))
    assert await client.closed_with() == 1009


async def test_frame_limit_counts_utf8_bytes(connect: Callable[[], Awaitable[Client]]) -> None:
    """The limit is in bytes: fewer characters than the limit but more bytes still close with 1009."""
    client = await connect()
    limit = chat_config().max_frame_bytes
    text = "é" * (limit // 2 + 1)  # 2 bytes each
    assert len(text) < limit < len(text.encode("utf-8"))
    await client.send(json.dumps({"type": "ping", "pad": text}, ensure_ascii=False))
    assert await client.closed_with() == 1009


async def test_frame_of_exactly_the_limit_is_served(connect: Callable[[], Awaitable[Client]]) -> None:
    """A frame of exactly max_frame_bytes is accepted."""
    client = await connect()
    limit = chat_config().max_frame_bytes
    head = '{"type":"ping","pad":"'
    raw = head + "x" * (limit - len(head) - 2) + '"}'
    assert len(raw.encode("utf-8")) == limit
    await client.send(raw)
    await client.expect("pong")


async def test_many_bad_frames_close_1008(connect: Callable[[], Awaitable[Client]]) -> None:
    """A client that keeps sending refused frames is closed with 1008 after ABUSE_LIMIT errors."""
    client = await connect()
    for _ in range(60):
        await client.send("not json")
    errors = 0
    while True:
        assert not await client.ws.receive_nothing(1, interval=0.005)
        output = await client.ws.receive_output()
        if output["type"] == "websocket.close":
            assert output["code"] == 1008
            break
        assert json.loads(output["text"])["code"] == "bad_json"
        errors += 1
    assert errors == ABUSE_LIMIT + 1


async def test_a_locked_room_refuses_sends_with_room_locked(
    connect: Callable[[], Awaitable[Client]], backend: FakeBackend, room_locks: set[str]
) -> None:
    """A send to a room that staff locked is answered room_locked (with room and client_id),
    and nothing is produced; reading the room goes on."""
    client = await connect()
    await client.join("quiet")
    room_locks.add("quiet")
    await client.send({"type": "send", "room": "quiet", "text": "hello", "client_id": "k1"})
    error = await client.expect("error")
    assert (error["code"], error["room"], error["client_id"]) == ("room_locked", "quiet", "k1")
    assert backend.records == []


async def test_a_guest_cannot_take_an_account_name(connect: Callable[[], Awaitable[Client]]) -> None:
    """hello with the name of a registered account (any case) is refused name_reserved; the
    guest keeps its name and can pick another."""
    client = await connect()
    await client.send({"type": "hello", "name": "Admin"})
    error = await client.expect("error")
    assert error["code"] == "name_reserved"
    await client.send({"type": "hello", "name": "not-admin"})
    assert (await client.expect("welcome"))["name"] == "not-admin"
