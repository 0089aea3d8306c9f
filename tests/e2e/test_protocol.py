"""PROTOCOL.md section 1 on one real gateway process and the real broker: every frame,
every error code, and every server close."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
import websockets

from tests.support import PROJECT_DIR, ChatClient

pytestmark = pytest.mark.e2e

FAST = {"CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}


async def test_welcome_then_hello_renames_and_welcomes_again(gateway):
    """The first frame is welcome with a guest name and the limits; hello renames and re-welcomes."""
    client = await ChatClient.connect(gateway.ws_url)
    welcome = client.welcome
    assert welcome["name"].startswith("guest-")
    assert welcome["ttl_ms"] == 120_000 and welcome["history_limit"] == 50
    limits = welcome["limits"]
    assert limits["max_text_chars"] > 0 and limits["max_rooms"] > 0
    assert limits["send_rate"]["per_second"] > 0 and limits["send_rate"]["burst"] > 0
    await client.send({"type": "hello", "name": "  Zoë the 2nd  "})
    again = await client.expect("welcome")
    assert again["name"] == "Zoë the 2nd"
    await client.close()


async def test_ping_join_leave_frames(gateway):
    """ping → pong; join → joined + history; leave → left; then send is not_joined."""
    client = await ChatClient.connect(gateway.ws_url)
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}
    history = await client.join("r1")
    assert history == {"type": "history", "room": "r1", "messages": [], "truncated": False}
    await client.send({"type": "leave", "room": "r1"})
    assert await client.recv() == {"type": "left", "room": "r1"}
    await client.post("r1", "after leaving", client_id="x")
    error = await client.expect("error")
    assert (error["code"], error["room"], error["client_id"]) == ("not_joined", "r1", "x")
    await client.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": "dance"}', "bad_frame"),
        ('{"type": "join"}', "bad_frame"),
        ('{"type": "join", "room": "lobby", "since": "7"}', "bad_frame"),
        ('{"type": "send", "room": "lobby", "text": 5}', "bad_frame"),
        ('{"type": "join", "room": "Lobby"}', "bad_room"),
        ('{"type": "join", "room": "-lobby"}', "bad_room"),
        ('{"type": "join", "room": "' + "a" * 65 + '"}', "bad_room"),
        ('{"type": "hello", "name": "   "}', "bad_name"),
        ('{"type": "hello", "name": "' + "n" * 33 + '"}', "bad_name"),
        ('{"type": "hello", "name": "bell\\u0007"}', "bad_name"),
        ('{"type": "leave", "room": "nowhere"}', "not_joined"),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_stays_up(gateway, frame, code):
    """Each bad frame is answered with its error code; the connection keeps working."""
    client = await ChatClient.connect(gateway.ws_url)
    await client.send(frame)
    error = await client.expect("error")
    assert error["code"] == code
    assert error["detail"]
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}
    await client.close()


async def test_text_rules_and_room_membership_errors(gateway_factory, topic):
    """bad_text, too_long, already_joined and too_many_rooms carry room and client_id."""
    gw = gateway_factory(topic, CHAT_MAX_TEXT_CHARS="10", CHAT_MAX_ROOMS="2")
    client = await ChatClient.connect(gw.ws_url)
    assert client.welcome["limits"]["max_text_chars"] == 10
    assert client.welcome["limits"]["max_rooms"] == 2
    await client.join("a")
    await client.post("a", "   \n\t ", client_id="blank")
    error = await client.expect("error")
    assert (error["code"], error["room"], error["client_id"]) == ("bad_text", "a", "blank")
    await client.post("a", "ü" * 11, client_id="long")
    error = await client.expect("error")
    assert (error["code"], error["room"], error["client_id"]) == ("too_long", "a", "long")
    await client.post("a", "ü" * 10, client_id="fits")
    got = {f["type"] for f in await client.collect(2)}
    assert got == {"ack", "message"}
    await client.send({"type": "join", "room": "a"})
    error = await client.expect("error")
    assert (error["code"], error["room"]) == ("already_joined", "a")
    await client.join("b")
    await client.send({"type": "join", "room": "c"})
    error = await client.expect("error")
    assert (error["code"], error["room"]) == ("too_many_rooms", "c")
    await client.close()


async def test_rate_limit_refuses_without_posting(gateway_factory, topic):
    """Past the burst, sends are answered rate_limited and nothing of them is posted."""
    gw = gateway_factory(topic, CHAT_SEND_RATE="0.5", CHAT_SEND_BURST="3")
    sender = await ChatClient.connect(gw.ws_url)
    watcher = await ChatClient.connect(gw.ws_url)
    await sender.join("rl")
    await watcher.join("rl")
    for i in range(6):
        await sender.post("rl", f"m{i}", client_id=f"c{i}")
    frames = await sender.collect(9)  # 3 acks + 3 messages + 3 errors
    errors = [f for f in frames if f["type"] == "error"]
    assert sorted(e["client_id"] for e in errors) == ["c3", "c4", "c5"]
    assert {e["code"] for e in errors} == {"rate_limited"}
    seen = [f["text"] for f in await watcher.collect(3)]
    assert seen == ["m0", "m1", "m2"]
    assert await watcher.quiet(1.0) == []
    await sender.close()
    await watcher.close()


async def test_user_is_stamped_by_the_server(gateway):
    """A client cannot choose `user` per message: it is the connection's name."""
    mallory = await ChatClient.connect(gateway.ws_url, name="mallory")
    await mallory.join("stamp")
    await mallory.send({"type": "send", "room": "stamp", "text": "I am admin", "user": "admin"})
    (message,) = await mallory.collect(1, kind="message")
    assert message["user"] == "mallory"
    await mallory.close()


async def test_oversized_frame_closes_with_1009(gateway_factory, topic):
    """A frame larger than the configured maximum closes the connection with 1009."""
    gw = gateway_factory(topic, CHAT_MAX_FRAME_BYTES="2048")
    client = await ChatClient.connect(gw.ws_url)
    assert client.welcome["limits"]["max_frame_bytes"] == 2048
    await client.send(json.dumps({"type": "ping", "pad": "x" * 4096}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    other = await ChatClient.connect(gw.ws_url)  # the gateway carries on
    await other.send({"type": "ping"})
    assert await other.recv() == {"type": "pong"}
    await other.close()


async def test_abusive_client_is_closed_with_1008(gateway):
    """A flood of refused frames ends in close 1008; other connections are unaffected."""
    bystander = await ChatClient.connect(gateway.ws_url)
    abuser = await ChatClient.connect(gateway.ws_url)
    for _ in range(80):
        await abuser.send("garbage")
    codes = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            codes.append((await abuser.recv())["code"])
    assert set(codes) == {"bad_json"}
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    await bystander.send({"type": "ping"})
    assert await bystander.recv() == {"type": "pong"}
    await bystander.close()


async def test_foreign_origin_is_rejected_at_the_handshake(gateway):
    """A browser page from another site cannot open a chat socket; our own origin can."""
    with pytest.raises(websockets.InvalidStatus) as rejected:
        await websockets.connect(gateway.ws_url, origin="http://evil.example")
    assert rejected.value.response.status_code == 403
    client = await ChatClient.connect(gateway.ws_url, origin=f"http://127.0.0.1:{gateway.port}")
    assert client.welcome["type"] == "welcome"
    await client.close()


async def test_isolation_between_rooms(gateway_factory, topic):
    """A connection never receives a message of a room it is not in, even on the same partition."""
    gw = gateway_factory(topic, **FAST)
    in_a = await ChatClient.connect(gw.ws_url)
    in_b = await ChatClient.connect(gw.ws_url)
    both = await ChatClient.connect(gw.ws_url)
    await in_a.join("room-a")
    await in_b.join("room-b")
    await both.join("room-a")
    await both.join("room-b")
    for i in range(5):
        await in_a.post("room-a", f"a{i}")
        await in_b.post("room-b", f"b{i}")
    a_frames = await in_a.collect(5, kind="message")
    b_frames = await in_b.collect(5, kind="message")
    assert {f["room"] for f in a_frames} == {"room-a"}
    assert {f["room"] for f in b_frames} == {"room-b"}
    all_frames = await both.collect(10, kind="message")
    assert sorted(f["text"] for f in all_frames) == sorted(
        [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    )
    assert [f for f in await in_a.quiet(1.0) if f["type"] == "message"] == []
    for client in (in_a, in_b, both):
        await client.close()


async def test_many_rooms_on_one_connection_in_parallel(gateway_factory, topic):
    """One connection in several rooms at once gets each room's history and live messages."""
    gw = gateway_factory(topic, **FAST)
    client = await ChatClient.connect(gw.ws_url)
    rooms = [f"multi-{i}" for i in range(5)]
    for room in rooms:
        await client.send({"type": "join", "room": room})
    frames = await client.collect(10)
    assert sorted(f["room"] for f in frames if f["type"] == "joined") == rooms
    assert sorted(f["room"] for f in frames if f["type"] == "history") == rooms
    for room in rooms:
        await client.post(room, f"to {room}")
    messages = await client.collect(5, kind="message")
    assert sorted((m["room"], m["text"]) for m in messages) == [(r, f"to {r}") for r in rooms]
    await asyncio.sleep(0)
    await client.close()


async def test_binary_frames_get_bad_json_and_oversized_ones_close_with_1009(gateway):
    """A binary frame is answered bad_json; one over max_frame_bytes closes with 1009."""
    client = await ChatClient.connect(gateway.ws_url)
    await client.ws.send(b'{"type":"ping"}')
    assert (await client.expect("error"))["code"] == "bad_json"
    await client.ws.send(b"x" * (client.welcome["limits"]["max_frame_bytes"] + 1))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_joins_and_leaves_are_rate_limited(gateway):
    """A join/leave loop is refused with rate_limited (each join reads Kafka) past its burst."""
    client = await ChatClient.connect(gateway.ws_url)
    codes = []
    for _ in range(20):
        await client.send({"type": "join", "room": "churn"})
        await client.send({"type": "leave", "room": "churn"})
    for frame in await client.quiet(3.0):
        codes.append(frame.get("code", frame["type"]))
    assert codes.count("rate_limited") >= 5, codes  # 40 joins and leaves against a burst of 30
    await client.close()


async def test_a_guest_cannot_pass_for_a_registered_account(gateway, gateway_database_url):
    """With a real database: hello with a registered account's name is name_reserved."""
    account = f"Member{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DATABASE_URL": gateway_database_url, "DJANGO_SETTINGS_MODULE": "ephemchat.settings"}
    code = f"from django.contrib.auth.models import User; User.objects.create_user('{account}')"
    command = [sys.executable, "manage.py", "shell", "-c", code]
    await asyncio.to_thread(subprocess.run, command, cwd=PROJECT_DIR, env=env, check=True)
    guest = await ChatClient.connect(gateway.ws_url)
    await guest.send({"type": "hello", "name": account.lower()})
    assert (await guest.expect("error"))["code"] == "name_reserved"
    await guest.send({"type": "hello", "name": f"{account}-fan"})
    assert (await guest.expect("welcome"))["name"] == f"{account}-fan"
    await guest.close()
