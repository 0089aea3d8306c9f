"""RoomChannelLayer: bounded inboxes, shared payloads, overflow notices, no eviction."""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any

import pytest
from channels.exceptions import ChannelFull

from rooms.layers import LAYER_DROPS, RoomChannelLayer


def event(room: str, offset: int) -> MappingProxyType[str, Any]:
    return MappingProxyType({"type": "chat.message", "room": room, "offset": offset})


async def member(layer: RoomChannelLayer, *groups: str) -> str:
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


async def test_group_send_hands_every_member_the_same_object() -> None:
    """Every member receives the identical mapping object: no per-member copy."""
    layer = RoomChannelLayer(capacity=10)
    channels = [await member(layer, "room.lobby") for _ in range(3)]
    message = event("lobby", 1)
    assert layer.group_send_nowait("room.lobby", message) == 0
    for channel in channels:
        assert await layer.receive(channel) is message


async def test_group_send_reaches_only_members() -> None:
    """A channel not in the group receives nothing from it."""
    layer = RoomChannelLayer(capacity=10)
    inside = await member(layer, "room.a")
    outside = await member(layer, "room.b")
    layer.group_send_nowait("room.a", event("a", 1))
    assert (await layer.receive(inside))["room"] == "a"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(outside), 0.05)


async def test_messages_keep_their_order() -> None:
    """A channel receives its messages in the order they were sent."""
    layer = RoomChannelLayer(capacity=10)
    channel = await member(layer, "room.lobby")
    for offset in range(5):
        layer.group_send_nowait("room.lobby", event("lobby", offset))
    assert [(await layer.receive(channel))["offset"] for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_receive_waits_for_a_message() -> None:
    """receive() blocks until a message arrives, then returns it."""
    layer = RoomChannelLayer(capacity=10)
    channel = await member(layer, "room.lobby")
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    layer.group_send_nowait("room.lobby", event("lobby", 1))
    assert (await asyncio.wait_for(waiting, 1))["offset"] == 1


async def test_overflow_counts_drops_and_notices_before_the_queue() -> None:
    """A full inbox drops the message, counts it, and receive() yields chat.overflow first."""
    layer = RoomChannelLayer(capacity=2)
    slow = await member(layer, "room.lobby")
    fast = await member(layer, "room.lobby")
    drops_before = LAYER_DROPS._value.get()
    layer.group_send_nowait("room.lobby", event("lobby", 1))
    layer.group_send_nowait("room.lobby", event("lobby", 2))
    for _ in range(2):  # the fast member keeps up
        await layer.receive(fast)
    assert layer.group_send_nowait("room.lobby", event("lobby", 3)) == 1  # only the slow one dropped it
    assert LAYER_DROPS._value.get() == drops_before + 1
    assert await layer.receive(slow) == {"type": "chat.overflow", "room": "lobby"}
    assert [(await layer.receive(slow))["offset"] for _ in range(2)] == [1, 2]
    assert (await layer.receive(fast))["offset"] == 3


async def test_group_send_returns_the_number_of_members_that_dropped() -> None:
    """The return value is how many members could not take the message."""
    layer = RoomChannelLayer(capacity=1)
    for _ in range(3):
        await member(layer, "room.lobby")
    assert layer.group_send_nowait("room.lobby", event("lobby", 1)) == 0
    assert layer.group_send_nowait("room.lobby", event("lobby", 2)) == 3


async def test_overflow_notices_are_deduplicated_per_room() -> None:
    """Many drops in one room give one notice for that room; each overflowing room gets its own."""
    layer = RoomChannelLayer(capacity=1)
    channel = await member(layer, "room.a", "room.b")
    layer.group_send_nowait("room.a", event("a", 0))
    for offset in range(1, 5):
        layer.group_send_nowait("room.a", event("a", offset))
    layer.group_send_nowait("room.b", event("b", 1))
    assert await layer.receive(channel) == {"type": "chat.overflow", "room": "a"}
    assert await layer.receive(channel) == {"type": "chat.overflow", "room": "b"}
    assert (await layer.receive(channel))["offset"] == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.05)


async def test_overflow_wakes_a_waiting_receiver() -> None:
    """A receiver blocked on an empty inbox is woken by an overflow notice."""
    layer = RoomChannelLayer(capacity=1)
    channel = await member(layer, "room.a")
    layer.group_send_nowait("room.a", event("a", 0))
    assert (await layer.receive(channel))["offset"] == 0
    layer.group_send_nowait("room.a", event("a", 1))
    layer.group_send_nowait("room.a", event("a", 2))  # dropped
    assert await layer.receive(channel) == {"type": "chat.overflow", "room": "a"}


async def test_a_slow_member_is_never_evicted() -> None:
    """After overflowing, a member stays in the group and gets new messages once it catches up."""
    layer = RoomChannelLayer(capacity=1)
    channel = await member(layer, "room.lobby")
    layer.group_send_nowait("room.lobby", event("lobby", 1))
    layer.group_send_nowait("room.lobby", event("lobby", 2))
    assert layer.has_members("room.lobby")
    await layer.receive(channel)  # overflow notice
    await layer.receive(channel)  # offset 1
    assert layer.group_send_nowait("room.lobby", event("lobby", 3)) == 0
    assert (await layer.receive(channel))["offset"] == 3


async def test_forget_channel_leaves_every_group() -> None:
    """forget_channel drops the channel's inbox and its membership of all groups."""
    layer = RoomChannelLayer(capacity=10)
    gone = await member(layer, "room.a", "room.b")
    stays = await member(layer, "room.b")
    layer.forget_channel(gone)
    assert not layer.has_members("room.a")
    assert layer.has_members("room.b")
    assert layer.group_send_nowait("room.b", event("b", 1)) == 0
    assert (await layer.receive(stays))["offset"] == 1
    assert layer.channel_count() == 1


async def test_group_discard_removes_one_member() -> None:
    """group_discard removes the channel; an empty group no longer has members."""
    layer = RoomChannelLayer(capacity=10)
    channel = await member(layer, "room.a")
    await layer.group_discard("room.a", channel)
    assert not layer.has_members("room.a")
    await layer.group_discard("room.a", channel)  # idempotent


async def test_send_raises_channel_full_at_capacity() -> None:
    """A direct send() to a full channel raises ChannelFull."""
    layer = RoomChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.send(channel, {"type": "y"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "z"})
    assert (await layer.receive(channel))["type"] == "x"


async def test_send_to_a_forgotten_channel_is_a_no_op() -> None:
    """Sending to a channel that is gone does nothing (like writing to a closed socket)."""
    layer = RoomChannelLayer(capacity=2)
    channel = await layer.new_channel()
    layer.forget_channel(channel)
    await layer.send(channel, {"type": "x"})
    assert layer.channel_count() == 0


async def test_group_add_validates_the_group_name() -> None:
    """Group names follow the Channels rules."""
    layer = RoomChannelLayer(capacity=2)
    channel = await layer.new_channel()
    with pytest.raises(TypeError):
        await layer.group_add("room with spaces", channel)


async def test_flush_clears_everything() -> None:
    """flush() empties inboxes and groups."""
    layer = RoomChannelLayer(capacity=2)
    await member(layer, "room.a")
    await layer.flush()
    assert layer.channel_count() == 0
    assert not layer.has_members("room.a")


async def test_forget_overflow_drops_a_stale_notice() -> None:
    """After a channel leaves a room, a pending overflow notice for it is dropped, so a later
    re-join does not start with a spurious `lagging`."""
    layer = RoomChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.group_add("room.a", channel)
    layer.group_send_nowait("room.a", {"type": "chat.message", "room": "a", "offset": 1})
    layer.group_send_nowait("room.a", {"type": "chat.message", "room": "a", "offset": 2})  # overflows
    layer.forget_overflow(channel, "a")
    batch = await layer.receive_batch(channel, 10)
    assert [event["type"] for event in batch] == ["chat.message"]
