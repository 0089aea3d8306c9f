"""Several real gateway processes on one broker (guarantee 6): fan-out to every member on
every gateway, partition interest, resume after a gateway crash, slow readers, drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time

import psutil
import pytest
import websockets

from kafka_bridge.partitioner import room_partition
from tests.support import ChatClient, join_mid_flow, post_paced, read_topic

pytestmark = pytest.mark.e2e

FAST = {"CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}


def assigned_partitions(metrics: dict[str, float]) -> set[int]:
    prefix = 'ephemchat_bridge_partition_assigned{partition="'
    return {int(k[len(prefix) : -2]) for k, v in metrics.items() if k.startswith(prefix) and v == 1.0}


async def test_every_member_on_every_gateway_gets_every_message_once_in_order(gateway_factory, topic):
    """9 members of one room over 3 gateways, 3 of them sending, plus other rooms: each
    member receives all 90 messages once, in the same offset order; every ack matches."""
    gateways = [gateway_factory(topic, **FAST) for _ in range(3)]
    members = [await ChatClient.connect(gateways[i % 3].ws_url, name=f"m{i}") for i in range(9)]
    for member in members:
        await member.join("big")
    others = [await ChatClient.connect(gateways[i].ws_url, name=f"o{i}") for i in (0, 2)]
    for other in others:
        await other.join("side")

    senders = members[:3]  # one on each gateway
    texts = {i: [f"{i}:{n}" for n in range(30)] for i in range(3)}
    side_texts = [f"side {n}" for n in range(10)]
    results = await asyncio.gather(
        *(post_paced(senders[i], "big", texts[i]) for i in range(3)),
        post_paced(others[0], "side", side_texts),
    )
    acked = {texts[i][int(cid)]: offset for i in range(3) for cid, offset in results[i].items()}
    assert len(acked) == 90

    runs = []
    for member in members[3:]:
        runs.append(await member.collect(90, kind="message"))
    for member in members[3:]:
        assert [f for f in await member.quiet(0.5) if f["type"] == "message"] == []
    reference = [(m["offset"], m["text"]) for m in runs[0]]
    assert [o for o, _ in reference] == sorted({o for o, _ in reference})
    assert dict((t, o) for o, t in reference) == acked, "each ack matches a delivered message"
    for run in runs:
        assert {m["room"] for m in run} == {"big"}, "isolation"
        assert [(m["offset"], m["text"]) for m in run] == reference, "same order on every gateway"
    side_run = await others[1].collect(10, kind="message")
    assert [m["text"] for m in side_run] == side_texts
    for client in members + others:
        await client.close()


async def test_a_gateway_reads_only_the_partitions_of_its_rooms(gateway_factory, topic):
    """Partition interest, seen from outside through /metrics: gateway A, whose only room is
    on partition p, reads p alone; records of other partitions never reach it, records of
    other rooms on p are filtered by key; p is released when its last member leaves."""
    room_a = "interest-a"
    p = room_partition(room_a, 50)
    same_p = next(f"same-{i}" for i in range(10_000) if room_partition(f"same-{i}", 50) == p)
    other_q = next(f"other-{i}" for i in range(10_000) if room_partition(f"other-{i}", 50) != p)
    gw_a, gw_b = gateway_factory(topic, **FAST), gateway_factory(topic, **FAST)
    member_a = await ChatClient.connect(gw_a.ws_url)
    await member_a.join(room_a)
    writer = await ChatClient.connect(gw_b.ws_url)
    await writer.join(same_p)
    await writer.join(other_q)

    assert assigned_partitions(gw_a.metrics()) == {p}
    assert assigned_partitions(gw_b.metrics()) == {p, room_partition(other_q, 50)}
    await post_paced(writer, other_q, [f"q{n}" for n in range(20)])
    await post_paced(writer, same_p, [f"p{n}" for n in range(10)])
    await asyncio.sleep(1.0)
    metrics = gw_a.metrics()
    assert metrics.get('ephemchat_bridge_records_total{outcome="filtered"}') == 10.0
    assert metrics.get('ephemchat_bridge_records_total{outcome="dispatched"}', 0.0) == 0.0
    assert [f for f in await member_a.quiet(0.5) if f["type"] == "message"] == []

    await member_a.send({"type": "leave", "room": room_a})
    await member_a.expect("left")
    for _ in range(50):
        if not assigned_partitions(gw_a.metrics()):
            break
        await asyncio.sleep(0.1)
    assert assigned_partitions(gw_a.metrics()) == set()
    await member_a.close()
    await writer.close()


class ResumingMember:
    """A member that, when its gateway dies, reconnects to the next one with `since`."""

    def __init__(self, urls: list[str], room: str) -> None:
        self.urls = urls
        self.room = room
        self.offsets: list[int] = []
        self.reconnects = 0

    async def run(self) -> None:
        url_index = 0
        while True:
            client = await ChatClient.connect(self.urls[url_index])
            since = self.offsets[-1] if self.offsets else None
            history = await client.join(self.room, since=since)
            self.offsets += [m["offset"] for m in history["messages"]]
            try:
                while True:
                    frame = await client.recv(timeout=120)
                    if frame["type"] == "message":
                        self.offsets.append(frame["offset"])
            except websockets.ConnectionClosed:
                self.reconnects += 1
                url_index = (url_index + 1) % len(self.urls)


async def test_clients_of_a_killed_gateway_resume_elsewhere_with_nothing_lost(gateway_factory, topic):
    """SIGKILL a gateway while messages flow: its members reconnect to another gateway with
    `since`; what each member received is exactly every acked message, once, in order."""
    g0, g1, g2 = (gateway_factory(topic, CHAT_HISTORY_LIMIT="1000", **FAST) for _ in range(3))
    members = [
        ResumingMember([g0.ws_url, g1.ws_url], "crash"),
        ResumingMember([g0.ws_url, g2.ws_url], "crash"),
        ResumingMember([g1.ws_url], "crash"),
    ]
    tasks = [asyncio.ensure_future(m.run()) for m in members]
    await asyncio.sleep(1.0)
    sender = await ChatClient.connect(g2.ws_url, name="sender")
    await sender.join("crash")

    async def kill_midway() -> None:
        await asyncio.sleep(0.8)
        g0.kill()

    killer = asyncio.ensure_future(kill_midway())
    acked_offsets: list[int] = []
    for n in range(0, 200, 10):
        acks = await post_paced(sender, "crash", [f"t{n + i}" for i in range(10)])
        acked_offsets += acks.values()
        await asyncio.sleep(0.05)
    await killer
    expected = sorted(acked_offsets)
    assert len(expected) == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(len(m.offsets) < 200 for m in members):
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    assert members[0].reconnects >= 1 and members[1].reconnects >= 1
    for member in members:
        assert member.offsets == expected
    await sender.close()


def _unread_socket(port: int) -> socket.socket:
    """A TCP socket with a tiny receive buffer, for a client that stops reading."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_reader_that_stops_reading_does_not_hold_up_the_room(gateway_factory, topic):
    """5,000 messages flow while one member never reads: it is told `lagging` (then re-joins
    with since), the fast members miss nothing, and the gateway's memory stays bounded."""
    gw = gateway_factory(topic, **FAST)
    process = psutil.Process(gw.proc.pid)
    slow_ws = await websockets.connect(gw.ws_url, sock=_unread_socket(gw.port), max_queue=1)
    slow = ChatClient(slow_ws)
    slow.welcome = await slow.expect("welcome")
    await slow.join("flood")
    fast = [await ChatClient.connect(gw.ws_url) for _ in range(2)]
    for client in fast:
        await client.join("flood")
    senders = [await ChatClient.connect(gw.ws_url) for _ in range(4)]
    for sender in senders:
        await sender.join("flood")
    rss_before = process.memory_info().rss
    text = "x" * 1000
    peak = rss_before

    async def watch_memory() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.2)

    watcher = asyncio.ensure_future(watch_memory())
    readers = [asyncio.ensure_future(c.collect(5000, kind="message", timeout=60)) for c in fast]
    await asyncio.gather(
        *(post_paced(s, "flood", [f"{i}-{n}-{text}" for n in range(1250)]) for i, s in enumerate(senders))
    )
    runs = await asyncio.gather(*readers)
    watcher.cancel()
    for run in runs:
        offsets = [m["offset"] for m in run]
        assert len(offsets) == 5000 and offsets == sorted(set(offsets))
    growth_mb = (peak - rss_before) / 2**20
    print(
        f"\nslow reader: gateway RSS {rss_before / 2**20:.0f} MB before,"
        f" peak {peak / 2**20:.0f} MB (+{growth_mb:.0f} MB)"
    )
    metrics = gw.metrics()
    assert metrics["ephemchat_lagging_total"] >= 1
    assert metrics["ephemchat_lagging_skipped_total"] >= 1, "every skipped message is counted"
    # ~5 MB of messages went to the room; without the bound all of it would queue for the slow member.
    assert growth_mb < 100

    # The slow member now reads: a prefix of the room in order, then `lagging`.
    got: list[int] = []
    while True:
        frame = await slow.recv(timeout=30)
        if frame["type"] == "error":
            assert (frame["code"], frame["room"]) == ("lagging", "flood")
            break
        if frame["type"] == "message":
            got.append(frame["offset"])
    assert got == sorted(set(got)) and len(got) < 5000
    history = await slow.join("flood", since=got[-1] if got else None)
    assert history["messages"] and history["messages"][0]["offset"] > (got[-1] if got else -1)
    assert history["truncated"] is True
    for client in [slow, *fast, *senders]:
        await client.close()


async def test_a_client_stuck_past_the_bound_is_closed_with_1008(gateway_factory, topic):
    """A member that stays unreadable past CHAT_SLOW_CLIENT_CLOSE_S is closed with 1008."""
    gw = gateway_factory(topic, CHAT_SLOW_CLIENT_BYTES=str(64 * 1024), CHAT_SLOW_CLIENT_CLOSE_S="1", **FAST)
    slow_ws = await websockets.connect(gw.ws_url, sock=_unread_socket(gw.port), max_queue=1)
    await slow_ws.send(json.dumps({"type": "join", "room": "stuck"}))
    sender = await ChatClient.connect(gw.ws_url)
    await sender.join("stuck")
    text = "y" * 1900  # the kernel's socket buffers take a few MB before the bound counts
    for batch in range(100):
        await post_paced(sender, "stuck", [f"{batch}-{n}-{text}" for n in range(100)])
        if gw.metrics().get('ephemchat_ws_server_closes_total{code="1008"}'):
            break
        await asyncio.sleep(0.1)
    final = gw.metrics()
    print({k: v for k, v in final.items() if "lagging_total" in k or "closes_total" in k}, batch)
    assert final.get('ephemchat_ws_server_closes_total{code="1008"}') == 1.0
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(slow_ws.recv(), 30)
    await sender.close()


async def test_sigterm_drains_every_send_and_closes_with_1012(gateway_factory, kafka_bootstrap, topic):
    """SIGTERM during a burst: each send is answered at most once (ack or unavailable), what
    Kafka holds is exactly what was acked, clients see 1012, and the gateway exits in bounds."""
    gw = gateway_factory(topic, **FAST)
    clients = [await ChatClient.connect(gw.ws_url, name=f"d{i}") for i in range(3)]
    for client in clients:
        await client.join("drain")

    async def burst_and_read(index: int, client: ChatClient) -> tuple[dict[str, list[str]], int | None]:
        answers: dict[str, list[str]] = {}

        async def burst() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                for n in range(50):
                    await client.post("drain", f"{index}-{n}", client_id=f"{index}-{n}")
                    await asyncio.sleep(0.01)

        bursting = asyncio.ensure_future(burst())  # read while sending, as a real client does
        code = None
        try:
            while True:
                frame = await client.recv(timeout=30)
                if frame["type"] in ("ack", "error"):
                    answers.setdefault(frame["client_id"], []).append(
                        frame["type"] if frame["type"] == "ack" else frame["code"]
                    )
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        await bursting
        return answers, code

    readers = [asyncio.ensure_future(burst_and_read(i, c)) for i, c in enumerate(clients)]
    await asyncio.sleep(0.25)
    drain_started = time.monotonic()
    os.kill(gw.proc.pid, signal.SIGTERM)
    exit_code = await asyncio.get_running_loop().run_in_executor(None, gw.wait, 30)
    drain_s = time.monotonic() - drain_started
    results = await asyncio.gather(*readers)
    print(f"\ndrain: gateway exited {exit_code} {drain_s:.2f} s after SIGTERM")
    assert exit_code == 0
    acked: set[str] = set()
    for answers, code in results:
        assert code == 1012
        for client_id, outcomes in answers.items():
            assert len(outcomes) == 1, f"{client_id} answered {outcomes}"
            assert outcomes[0] in ("ack", "unavailable")
            if outcomes[0] == "ack":
                acked.add(client_id)
    assert acked, "some sends were acked before the drain"
    posted = {json.loads(value)["client_id"] for _p, _o, _k, value in read_topic(kafka_bootstrap, topic)}
    assert posted == acked, "Kafka holds exactly the acknowledged sends"
    with contextlib.suppress(Exception):
        for client in clients:
            await client.close()


async def test_first_member_on_a_gateway_gets_an_exact_seam_while_its_partition_is_assigned(
    gateway_factory, topic
):
    """Messages flow through gateway A; a client joins on gateway B, which has no member of
    the room yet and must first assign the partition: history then live, no gap, no duplicate."""
    gw_a, gw_b = (
        gateway_factory(topic, CHAT_HISTORY_LIMIT="1000", **FAST),
        gateway_factory(topic, CHAT_HISTORY_LIMIT="1000", **FAST),
    )
    writer = await ChatClient.connect(gw_a.ws_url)
    await writer.join("assign-seam")

    def b_reads_nothing_yet() -> None:
        assert assigned_partitions(gw_b.metrics()) == set(), "B reads nothing before the join"

    seen = await join_mid_flow(writer, gw_b.ws_url, "assign-seam", total=200, before_join=b_reads_nothing_yet)
    assert seen == [f"n{n}" for n in range(200)]
    await writer.close()
