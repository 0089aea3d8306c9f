"""PROTOCOL.md section 2 (guarantees 1-5) and section 3 (records of other producers) on one
real gateway and the real broker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_bridge.partitioner import room_partition
from tests.support import ChatClient, join_mid_flow, post_paced

pytestmark = pytest.mark.e2e

FAST = {"CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}


async def test_two_hundred_messages_arrive_in_offset_order_exactly_once(gateway_factory, topic):
    """Guarantees 1 and 2: every member gets all 200 in increasing offset order, no duplicate;
    every send gets exactly one ack, and each acked offset is a delivered message."""
    gw = gateway_factory(topic, **FAST)
    senders = [await ChatClient.connect(gw.ws_url, name=f"s{i}") for i in range(2)]
    readers = [await ChatClient.connect(gw.ws_url) for _ in range(3)]
    for client in senders + readers:
        await client.join("order")

    texts = {i: [f"{i}-{n}" for n in range(100)] for i in range(2)}
    results = await asyncio.gather(*(post_paced(s, "order", texts[i]) for i, s in enumerate(senders)))
    acks = {texts[i][int(cid)]: offset for i in range(2) for cid, offset in results[i].items()}
    assert len(acks) == 200 and len(set(acks.values())) == 200, "one ack per send, distinct offsets"
    runs = [await reader.collect(200, kind="message") for reader in readers]
    for run in runs:
        offsets = [m["offset"] for m in run]
        assert offsets == sorted(set(offsets)), "increasing, no duplicates"
        assert run == runs[0], "every member sees the same sequence"
    by_offset = {m["offset"]: m["text"] for m in runs[0]}
    assert {by_offset[offset]: offset for offset in acks.values()} == acks, "each ack matches its message"
    for index in range(2):
        mine = [m["text"] for m in runs[0] if m["user"] == f"s{index}"]
        assert mine == [f"{index}-{n}" for n in range(100)], "a sender's own order is kept"
    for client in senders + readers:
        await client.close()


async def test_history_limit_truncated_and_since_resume(gateway_factory, topic):
    """Guarantee 5: history holds the newest N (truncated when older ones were left out),
    and join with since = O returns exactly what came after O."""
    gw = gateway_factory(topic, CHAT_HISTORY_LIMIT="5", **FAST)
    writer = await ChatClient.connect(gw.ws_url, name="w")
    await writer.join("hist")
    for n in range(8):
        await writer.post("hist", f"m{n}", client_id=str(n))
    acks = sorted(f["offset"] for f in await writer.collect(8, kind="ack"))

    late = await ChatClient.connect(gw.ws_url)
    history = await late.join("hist")
    assert [m["text"] for m in history["messages"]] == [f"m{n}" for n in range(3, 8)]
    assert [m["offset"] for m in history["messages"]] == acks[3:]
    assert history["truncated"] is True
    first = history["messages"][0]
    assert set(first) >= {"room", "offset", "user", "text", "ts", "expires_at"}
    assert first["expires_at"] == first["ts"] + 120_000 and first["user"] == "w"

    resumed = await ChatClient.connect(gw.ws_url)
    history = await resumed.join("hist", since=acks[5])
    assert [m["text"] for m in history["messages"]] == ["m6", "m7"]
    assert history["truncated"] is False
    caught_up = await ChatClient.connect(gw.ws_url)
    assert (await caught_up.join("hist", since=acks[-1]))["messages"] == []
    for client in (writer, late, resumed, caught_up):
        await client.close()


async def test_join_while_messages_flow_has_an_exact_seam(gateway_factory, topic):
    """Guarantee 5: history then live, with no gap and no duplicate at the seam,
    while another client keeps posting during the join."""
    gw = gateway_factory(topic, CHAT_HISTORY_LIMIT="1000", **FAST)
    writer = await ChatClient.connect(gw.ws_url)
    await writer.join("seam")
    seen = await join_mid_flow(writer, gw.ws_url, "seam", total=150)
    assert seen == [f"n{n}" for n in range(150)]
    await writer.close()


async def test_messages_expire_at_every_read(gateway_factory, kafka_bootstrap, topic):
    """Guarantee 3 under a 3 s TTL: expires_at = ts + TTL, the topic's retention is the TTL,
    and once expired a message is in no history frame."""
    gw = gateway_factory(topic, CHAT_MESSAGE_TTL="3")
    client = await ChatClient.connect(gw.ws_url)
    assert client.welcome["ttl_ms"] == 3000
    await client.join("ttl")
    await client.post("ttl", "soon gone")
    (message,) = await client.collect(1, kind="message")
    assert message["expires_at"] - message["ts"] == 3000
    fresh = await ChatClient.connect(gw.ws_url)
    assert [m["text"] for m in (await fresh.join("ttl"))["messages"]] == ["soon gone"]
    await asyncio.sleep(max(0.0, message["expires_at"] / 1000 - time.time()) + 0.3)
    after = await ChatClient.connect(gw.ws_url)
    assert (await after.join("ttl"))["messages"] == []
    resumed = await ChatClient.connect(gw.ws_url)
    assert (await resumed.join("ttl", since=-1))["messages"] == []

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["retention.ms"].value == "3000"
    assert configs["message.timestamp.type"].value == "LogAppendTime"
    for c in (client, fresh, after, resumed):
        await c.close()


async def test_records_of_other_producers_reach_the_room_and_bad_ones_are_skipped(
    gateway_factory, kafka_bootstrap, topic
):
    """Section 3: a plain producer with the room as key (murmur2 partitioner) reaches the
    room's members; a record that does not parse is skipped and counted."""
    gw = gateway_factory(topic)
    member = await ChatClient.connect(gw.ws_url)
    await member.join("foreign")
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random", "acks": "all"}
    )
    delivered = []
    producer.produce(topic, key=b"foreign", value=b"{not json", on_delivery=lambda e, m: delivered.append(m))
    producer.produce(topic, key=b"foreign", value=b'{"room":"foreign","text":"no user"}')
    producer.produce(
        topic,
        key=b"foreign",
        value=json.dumps({"room": "foreign", "user": "ops-bot", "text": "hello from outside"}).encode(),
        on_delivery=lambda e, m: delivered.append(m),
    )
    assert producer.flush(10) == 0
    (message,) = await member.collect(1, kind="message")
    assert (message["user"], message["text"]) == ("ops-bot", "hello from outside")
    assert delivered[-1].partition() == room_partition("foreign", 50), "Kafka's default partition for the key"
    assert message["offset"] == delivered[-1].offset()
    assert await member.quiet(0.5) == []
    assert gw.metrics()['ephemchat_bridge_records_total{outcome="bad"}'] == 2.0
    history = await (await ChatClient.connect(gw.ws_url)).join("foreign")
    assert [m["text"] for m in history["messages"]] == ["hello from outside"]
    await member.close()


async def test_a_since_beyond_the_end_does_not_hide_new_messages(gateway):
    """A client resuming with an offset from an older topic (beyond the partition's end) still
    gets the room's next messages."""
    stale = await ChatClient.connect(gateway.ws_url)
    history = await stale.join("reborn", since=10**9)
    assert history["messages"] == []
    writer = await ChatClient.connect(gateway.ws_url)
    await writer.join("reborn")
    await writer.post("reborn", "fresh start")
    (message,) = await stale.collect(1, kind="message")
    assert message["text"] == "fresh start"
    await stale.close()
    await writer.close()
