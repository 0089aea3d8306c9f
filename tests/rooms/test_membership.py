"""Room membership of one connection and the seam between history and live messages."""

from __future__ import annotations

from typing import Any

import pytest

from rooms.errors import ErrorCode, ProtocolError
from rooms.membership import PENDING_LIMIT, RoomPhase, Subscriptions


def live(room: str, offset: int) -> dict[str, Any]:
    return {"type": "chat.message", "room": room, "offset": offset}


def joined(subs: Subscriptions, room: str, cursor: int = -1) -> None:
    """Take `room` through a whole join with history up to `cursor`."""
    subs.begin_join(room)
    subs.set_history_cursor(room, cursor)
    assert subs.drain_pending(room) == []
    assert subs.go_live(room)


def test_begin_join_registers_a_new_room_in_joining() -> None:
    """A first join returns True and leaves the room JOINING."""
    subs = Subscriptions(max_rooms=3)
    assert subs.begin_join("lobby") is True
    assert "lobby" in subs and len(subs) == 1
    assert subs.phase("lobby") is RoomPhase.JOINING
    assert subs.phase("other") is None


@pytest.mark.parametrize("live_first", [False, True])
def test_joining_twice_is_already_joined(live_first: bool) -> None:
    """A join for a room that is joining or live is already_joined, naming the room."""
    subs = Subscriptions(max_rooms=3)
    if live_first:
        joined(subs, "lobby")
    else:
        subs.begin_join("lobby")
    with pytest.raises(ProtocolError) as caught:
        subs.begin_join("lobby")
    assert caught.value.code is ErrorCode.ALREADY_JOINED
    assert caught.value.room == "lobby"


def test_too_many_rooms() -> None:
    """Past max_rooms a join is too_many_rooms and does not register the room."""
    subs = Subscriptions(max_rooms=2)
    subs.begin_join("a")
    subs.begin_join("b")
    with pytest.raises(ProtocolError) as caught:
        subs.begin_join("c")
    assert caught.value.code is ErrorCode.TOO_MANY_ROOMS
    assert caught.value.room == "c"
    assert "c" not in subs and len(subs) == 2
    subs.leave("a")
    assert subs.begin_join("c") is True  # a slot freed by leave can be used


def test_rejoin_is_allowed_after_lagging() -> None:
    """A lagging room can be joined again: begin_join returns False (not new) and restarts JOINING."""
    subs = Subscriptions(max_rooms=1)
    joined(subs, "lobby", cursor=5)
    assert subs.mark_lagging("lobby") is True
    assert subs.phase("lobby") is RoomPhase.LAGGING
    assert subs.begin_join("lobby") is False  # not too_many_rooms even at the limit
    assert subs.phase("lobby") is RoomPhase.JOINING


def test_mark_lagging_is_reported_once_per_episode() -> None:
    """mark_lagging is True the first time only, and False for rooms the connection is not in."""
    subs = Subscriptions(max_rooms=2)
    joined(subs, "lobby")
    assert subs.mark_lagging("lobby") is True
    assert subs.mark_lagging("lobby") is False
    assert subs.mark_lagging("nowhere") is False


def test_live_messages_are_held_while_joining() -> None:
    """While JOINING, live messages are buffered, not sent."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    assert subs.accept_live(live("lobby", 10)) is False
    assert subs.accept_live(live("lobby", 11)) is False
    subs.set_history_cursor("lobby", 9)
    assert [e["offset"] for e in subs.drain_pending("lobby")] == [10, 11]


def test_drain_pending_drops_what_history_covered_and_advances_the_cursor() -> None:
    """drain_pending keeps only offsets above the history cursor, empties the buffer and moves the cursor."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    for offset in (8, 9, 10, 11, 12):
        subs.accept_live(live("lobby", offset))
    subs.set_history_cursor("lobby", 10)
    assert [e["offset"] for e in subs.drain_pending("lobby")] == [11, 12]
    assert subs.drain_pending("lobby") == []
    assert subs.go_live("lobby") is True
    # The cursor is now 12: a late duplicate of 12 is not sent again, 13 is.
    assert subs.accept_live(live("lobby", 12)) is False
    assert subs.accept_live(live("lobby", 13)) is True


def test_drain_pending_with_everything_covered_keeps_the_cursor() -> None:
    """When history covered all held messages, nothing is drained and the cursor stays."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    subs.accept_live(live("lobby", 3))
    subs.set_history_cursor("lobby", 7)
    assert subs.drain_pending("lobby") == []
    subs.go_live("lobby")
    assert subs.accept_live(live("lobby", 7)) is False
    assert subs.accept_live(live("lobby", 8)) is True


def test_accept_live_only_for_increasing_offsets() -> None:
    """Once LIVE, a message passes only when its offset is above the last one sent: no duplicates."""
    subs = Subscriptions(max_rooms=1)
    joined(subs, "lobby", cursor=4)
    results = [subs.accept_live(live("lobby", o)) for o in (3, 4, 5, 5, 6, 2, 7)]
    assert results == [False, False, True, False, True, False, True]


def test_accept_live_ignores_rooms_not_joined_and_lagging_rooms() -> None:
    """A message of a room the connection is not in, or of a lagging room, is not sent."""
    subs = Subscriptions(max_rooms=2)
    joined(subs, "lobby")
    assert subs.accept_live(live("other", 1)) is False
    subs.mark_lagging("lobby")
    assert subs.accept_live(live("lobby", 1)) is False


def test_pending_overflow_makes_the_join_end_lagging() -> None:
    """More than PENDING_LIMIT held messages: go_live returns False and the room is LAGGING."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    for offset in range(PENDING_LIMIT + 1):
        subs.accept_live(live("lobby", offset))
    subs.set_history_cursor("lobby", -1)
    drained = subs.drain_pending("lobby")
    assert len(drained) == PENDING_LIMIT  # bounded: the oldest was dropped
    assert drained[-1]["offset"] == PENDING_LIMIT
    assert subs.go_live("lobby") is False
    assert subs.phase("lobby") is RoomPhase.LAGGING


def test_pending_at_exactly_the_limit_is_not_an_overflow() -> None:
    """PENDING_LIMIT held messages fit: the join goes live."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    for offset in range(PENDING_LIMIT):
        subs.accept_live(live("lobby", offset))
    subs.set_history_cursor("lobby", -1)
    assert len(subs.drain_pending("lobby")) == PENDING_LIMIT
    assert subs.go_live("lobby") is True


def test_rejoin_clears_the_overflow_of_the_previous_join() -> None:
    """A re-join after lagging starts with an empty buffer and no overflow."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    for offset in range(PENDING_LIMIT + 1):
        subs.accept_live(live("lobby", offset))
    subs.set_history_cursor("lobby", -1)
    subs.drain_pending("lobby")
    assert not subs.go_live("lobby")
    assert subs.begin_join("lobby") is False
    subs.set_history_cursor("lobby", PENDING_LIMIT)
    assert subs.drain_pending("lobby") == []
    assert subs.go_live("lobby") is True


def test_overflow_notice_while_joining_makes_the_join_end_lagging() -> None:
    """A channel-layer overflow for a room still JOINING must not be forgotten.

    The layer dropped a live message of the room (it never reached `pending`), so the
    join has to end in `lagging`. BUG: mark_lagging() ignores rooms that are not LIVE,
    so go_live() then returns True and the client silently misses a message
    (guarantee 1). Fix: in mark_lagging, for a JOINING room set pending_overflowed.
    """
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    subs.accept_live(live("lobby", 10))
    subs.mark_lagging("lobby")  # the consumer's reaction to chat.overflow
    subs.set_history_cursor("lobby", 9)
    subs.drain_pending("lobby")
    assert subs.go_live("lobby") is False


def test_leave_unknown_room_is_not_joined() -> None:
    """leave for a room the connection is not in is not_joined, naming the room."""
    subs = Subscriptions(max_rooms=1)
    with pytest.raises(ProtocolError) as caught:
        subs.leave("lobby")
    assert caught.value.code is ErrorCode.NOT_JOINED
    assert caught.value.room == "lobby"


def test_leave_removes_the_room() -> None:
    """After leave the room is gone, its messages are not accepted, and a second leave is not_joined."""
    subs = Subscriptions(max_rooms=1)
    joined(subs, "lobby")
    subs.leave("lobby")
    assert "lobby" not in subs and subs.rooms() == []
    assert subs.accept_live(live("lobby", 1)) is False
    with pytest.raises(ProtocolError):
        subs.leave("lobby")


def test_abort_join_forgets_the_room() -> None:
    """abort_join removes a joining room so that it can be joined again."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    subs.abort_join("lobby")
    assert "lobby" not in subs
    assert subs.begin_join("lobby") is True


def test_require_member() -> None:
    """require_member passes for a joined room and raises not_joined with room and client_id otherwise."""
    subs = Subscriptions(max_rooms=1)
    subs.begin_join("lobby")
    subs.require_member("lobby", "c-1")  # joining counts as a member
    with pytest.raises(ProtocolError) as caught:
        subs.require_member("other", "c-2")
    assert caught.value.code is ErrorCode.NOT_JOINED
    assert (caught.value.room, caught.value.client_id) == ("other", "c-2")


def test_rooms_lists_every_room() -> None:
    """rooms() lists the rooms in joining, live and lagging phases."""
    subs = Subscriptions(max_rooms=3)
    subs.begin_join("a")
    joined(subs, "b")
    joined(subs, "c")
    subs.mark_lagging("c")
    assert sorted(subs.rooms()) == ["a", "b", "c"]
