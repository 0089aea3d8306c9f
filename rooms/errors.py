"""Protocol error codes (PROTOCOL.md section 1) and the one exception that carries them."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    BAD_ROOM = "bad_room"
    BAD_NAME = "bad_name"
    BAD_TEXT = "bad_text"
    TOO_LONG = "too_long"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    TOO_MANY_ROOMS = "too_many_rooms"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    LAGGING = "lagging"
    # Extensions of ours (the protocol allows new codes).
    NAME_LOCKED = "name_locked"  # a signed-in user's name is their account name
    NAME_RESERVED = "name_reserved"  # a guest cannot take the name of a registered account
    ROOM_LOCKED = "room_locked"  # staff locked the room: sends are refused


class ProtocolError(Exception):
    """A client frame that cannot be honoured; becomes one `error` frame."""

    def __init__(
        self, code: ErrorCode, detail: str, *, room: str | None = None, client_id: str | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.room = room
        self.client_id = client_id
