"""Which rooms a connection is in, and the seam between history and live messages.

Pure state, no I/O. A room goes JOINING (history being read; live messages are held)
→ LIVE (live messages pass when their offset is above the cursor) → possibly LAGGING
(live messages are skipped until the client re-joins with `since`). The cursor is the
highest offset handed to the client, so nothing is sent twice and the order is kept.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rooms.errors import ErrorCode, ProtocolError

# Live messages held per room while its history is read. History reads take milliseconds;
# 1,000 covers a few seconds of a very busy room. Past it the join ends in `lagging`.
PENDING_LIMIT = 1000

Event = Mapping[str, Any]


class RoomPhase(enum.Enum):
    JOINING = "joining"
    LIVE = "live"
    LAGGING = "lagging"


@dataclass(slots=True)
class RoomSubscription:
    room: str
    phase: RoomPhase = RoomPhase.JOINING
    cursor: int = -1
    pending: deque[Event] = field(default_factory=lambda: deque(maxlen=PENDING_LIMIT))
    pending_overflowed: bool = False


class Subscriptions:
    def __init__(self, *, max_rooms: int) -> None:
        self.max_rooms = max_rooms
        self._rooms: dict[str, RoomSubscription] = {}

    def __contains__(self, room: object) -> bool:
        return room in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)

    def rooms(self) -> list[str]:
        return list(self._rooms)

    def phase(self, room: str) -> RoomPhase | None:
        sub = self._rooms.get(room)
        return sub.phase if sub else None

    def begin_join(self, room: str) -> bool:
        """Start a join; True when the room is new to this connection (False: a re-join
        after `lagging`). Raises already_joined / too_many_rooms."""
        sub = self._rooms.get(room)
        if sub is not None:
            if sub.phase is not RoomPhase.LAGGING:
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "already in this room", room=room)
            sub.phase = RoomPhase.JOINING
            sub.pending.clear()
            sub.pending_overflowed = False
            return False
        if len(self._rooms) >= self.max_rooms:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS, f"a connection can be in at most {self.max_rooms} rooms", room=room
            )
        self._rooms[room] = RoomSubscription(room=room)
        return True

    def abort_join(self, room: str) -> None:
        self._rooms.pop(room, None)

    def set_history_cursor(self, room: str, cursor: int) -> None:
        """After the history frame: everything up to `cursor` is with the client."""
        self._rooms[room].cursor = cursor

    def drain_pending(self, room: str) -> list[Event]:
        """Live messages held during the join that the client does not have yet."""
        sub = self._rooms[room]
        out = [event for event in sub.pending if event["offset"] > sub.cursor]
        sub.pending.clear()
        if out:
            sub.cursor = out[-1]["offset"]
        return out

    def go_live(self, room: str) -> bool:
        """End the join. False when live messages were lost while joining (send `lagging`)."""
        sub = self._rooms[room]
        if sub.pending_overflowed:
            sub.phase = RoomPhase.LAGGING
            return False
        sub.phase = RoomPhase.LIVE
        return True

    def accept_live(self, event: Event) -> bool:
        """True when this live message is to be sent now (and advances the cursor)."""
        sub = self._rooms.get(event["room"])
        if sub is None:
            return False
        if sub.phase is RoomPhase.JOINING:
            if len(sub.pending) == PENDING_LIMIT:
                sub.pending_overflowed = True
            sub.pending.append(event)
            return False
        if sub.phase is RoomPhase.LIVE and event["offset"] > sub.cursor:
            sub.cursor = event["offset"]
            return True
        return False

    def mark_lagging(self, room: str) -> bool:
        """Skip the room's live messages until a re-join; True the first time in an episode."""
        sub = self._rooms.get(room)
        if sub is not None and sub.phase is RoomPhase.JOINING:
            sub.pending_overflowed = True  # the join ends in `lagging`
            return False
        if sub is None or sub.phase is not RoomPhase.LIVE:
            return False
        sub.phase = RoomPhase.LAGGING
        return True

    def leave(self, room: str) -> None:
        if self._rooms.pop(room, None) is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, "not in this room", room=room)

    def require_member(self, room: str, client_id: str | None) -> None:
        if room not in self._rooms:
            raise ProtocolError(ErrorCode.NOT_JOINED, "join the room first", room=room, client_id=client_id)
