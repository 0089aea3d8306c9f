"""WebSocket frames: typed client frames decoded in one place, server frames encoded here.

`decode_client_frame` is the one error path from raw text to a protocol error code:
bad_json, bad_frame, bad_room, bad_name. Text rules need the limits, so they live in
`rooms.domain.validate_text` and are applied by the consumer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms.domain import MAX_CLIENT_ID_CHARS, is_utf8, is_valid_room_id, normalize_name, validate_room_id
from rooms.errors import ErrorCode, ProtocolError


@dataclass(frozen=True, slots=True)
class Hello:
    name: str


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    since: int | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    room: str


@dataclass(frozen=True, slots=True)
class Send:
    room: str
    text: str
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


ClientFrame = Hello | Join | Leave | Send | Ping


def _bad(detail: str, **where: str | None) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FRAME, detail, **where)


def _string_field(data: dict[str, Any], field: str, **where: str | None) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise _bad(f"'{field}' must be a string", **where)
    if not is_utf8(value):
        raise _bad(f"'{field}' is not valid Unicode text", **where)
    return value


def _client_id(data: dict[str, Any]) -> str | None:
    value = data.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CLIENT_ID_CHARS or not is_utf8(value):
        raise _bad(f"'client_id' must be a string of at most {MAX_CLIENT_ID_CHARS} characters")
    return value


def decode_client_frame(raw: str) -> ClientFrame:
    """Parse one text frame from a client, or raise ProtocolError with the right code."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # deep nesting raises RecursionError
        raise ProtocolError(ErrorCode.BAD_JSON, "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "the frame is not a JSON object")
    kind = data.get("type")
    if kind == "ping":
        return Ping()
    if kind == "hello":
        return Hello(name=normalize_name(_string_field(data, "name")))
    if kind == "send":
        try:
            client_id = _client_id(data)
        except ProtocolError as error:
            room = data.get("room")
            error.room = room if is_valid_room_id(room) else None
            raise
        try:
            room = validate_room_id(_string_field(data, "room", client_id=client_id))
        except ProtocolError as error:
            error.client_id = client_id
            raise
        text = _string_field(data, "text", room=room, client_id=client_id)
        return Send(room=room, text=text, client_id=client_id)
    if kind in ("join", "leave"):
        room = validate_room_id(_string_field(data, "room"))
        if kind == "leave":
            return Leave(room=room)
        since = data.get("since")
        if since is not None and (type(since) is not int or since < -1):
            raise _bad("'since' must be an offset (an integer, -1 or more)", room=room)
        return Join(room=room, since=since)
    if not isinstance(kind, str):
        raise _bad("the frame has no 'type' string")
    raise _bad(f"unknown frame type {kind[:32]!r}")


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(error: ProtocolError) -> str:
    frame: dict[str, Any] = {"type": "error", "code": str(error.code), "detail": error.detail}
    if error.room is not None:
        frame["room"] = error.room
    if error.client_id is not None:
        frame["client_id"] = error.client_id
    return encode(frame)
