"""Client frames decoded in one place, with one error path to the protocol's codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rooms.domain import MAX_CLIENT_ID_CHARS
from rooms.errors import ErrorCode, ProtocolError
from rooms.frames import Hello, Join, Leave, Ping, Send, decode_client_frame, encode, error_frame


def decode(frame: dict[str, Any]) -> object:
    return decode_client_frame(json.dumps(frame))


def refused(raw: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_client_frame(raw)
    return caught.value


# -- every client frame of PROTOCOL.md ----------------------------------------------------


def test_hello_is_decoded_with_a_trimmed_name() -> None:
    """{"type":"hello","name":...} becomes Hello with the trimmed name."""
    assert decode({"type": "hello", "name": "  alice "}) == Hello(name="alice")


def test_join_is_decoded_without_since() -> None:
    """{"type":"join","room":...} becomes Join with since None."""
    assert decode({"type": "join", "room": "lobby"}) == Join(room="lobby", since=None)


@pytest.mark.parametrize("since", [-1, 0, 1234, 2**62])
def test_join_is_decoded_with_since(since: int) -> None:
    """since is an integer offset, -1 or more."""
    assert decode({"type": "join", "room": "lobby", "since": since}) == Join(room="lobby", since=since)


def test_join_with_null_since_is_a_plain_join() -> None:
    """ "since": null means no since."""
    assert decode({"type": "join", "room": "lobby", "since": None}) == Join(room="lobby")


def test_leave_is_decoded() -> None:
    """{"type":"leave","room":...} becomes Leave."""
    assert decode({"type": "leave", "room": "lobby"}) == Leave(room="lobby")


def test_send_is_decoded_with_and_without_client_id() -> None:
    """send carries room, text, and the optional client_id."""
    assert decode({"type": "send", "room": "lobby", "text": "hi", "client_id": "c-17"}) == Send(
        room="lobby", text="hi", client_id="c-17"
    )
    assert decode({"type": "send", "room": "lobby", "text": "hi"}) == Send(room="lobby", text="hi")


def test_send_ignores_a_user_field() -> None:
    """The client cannot choose the user: a "user" field is dropped, Send has no user."""
    frame = decode({"type": "send", "room": "lobby", "text": "hi", "user": "mallory"})
    assert frame == Send(room="lobby", text="hi")


def test_ping_is_decoded() -> None:
    """{"type":"ping"} becomes Ping."""
    assert decode({"type": "ping"}) == Ping()


def test_unknown_extra_fields_are_ignored() -> None:
    """Unknown fields do not make a frame bad (forward compatibility)."""
    assert decode({"type": "ping", "v": 2, "extra": {"x": [1]}}) == Ping()
    assert decode({"type": "join", "room": "lobby", "colour": "red"}) == Join(room="lobby")


# -- bad_json -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["not json", "{", "", '{"type":"ping"', "{'type':'ping'}"])
def test_text_that_is_not_json_is_bad_json(raw: str) -> None:
    """A frame that does not parse as JSON is bad_json."""
    assert refused(raw).code is ErrorCode.BAD_JSON


@pytest.mark.parametrize("raw", ['[{"type":"ping"}]', '"ping"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_bad_json(raw: str) -> None:
    """A JSON array, string, number or null is bad_json: frames are JSON objects."""
    assert refused(raw).code is ErrorCode.BAD_JSON


@pytest.mark.parametrize("raw", ["[" * 3000, '{"a":' * 3000, '{"type":"ping","x":' + "[" * 5000])
def test_deeply_nested_json_is_bad_json(raw: str) -> None:
    """A small but deeply nested frame is refused with bad_json like any other bad JSON.

    BUG: json.loads raises RecursionError (not ValueError) past ~1000 levels, which
    decode_client_frame does not catch; 3 KB of '[' kills the consumer.
    """
    assert len(raw) < 16384  # well under the default max_frame_bytes
    assert refused(raw).code is ErrorCode.BAD_JSON


# -- bad_frame ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {},
        {"kind": "ping"},
        {"type": None},
        {"type": 1},
        {"type": ["ping"]},
        {"type": "PING"},
        {"type": "subscribe", "room": "lobby"},
        {"type": ""},
    ],
)
def test_missing_or_unknown_type_is_bad_frame(frame: dict[str, Any]) -> None:
    """No "type" string, or a type the protocol does not define, is bad_frame."""
    assert refused(json.dumps(frame)).code is ErrorCode.BAD_FRAME


def test_unknown_type_detail_is_bounded() -> None:
    """A very long unknown type is not echoed in full in the detail."""
    error = refused(json.dumps({"type": "x" * 10_000}))
    assert error.code is ErrorCode.BAD_FRAME
    assert len(error.detail) < 100


@pytest.mark.parametrize("kind", ["join", "leave", "send"])
@pytest.mark.parametrize("room", [None, 7, ["lobby"], {"id": "lobby"}])
def test_non_string_room_is_bad_frame(kind: str, room: object) -> None:
    """join/leave/send without a string room is bad_frame (not bad_room)."""
    frame: dict[str, Any] = {"type": kind, "text": "hi"}
    if room is not None:
        frame["room"] = room
    assert refused(json.dumps(frame)).code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("text", [None, 7, ["hi"], {"t": "hi"}])
def test_non_string_text_is_bad_frame_with_room_and_client_id(text: object) -> None:
    """send without a string text is bad_frame, naming the room and client_id."""
    frame: dict[str, Any] = {"type": "send", "room": "lobby", "client_id": "c-1"}
    if text is not None:
        frame["text"] = text
    error = refused(json.dumps(frame))
    assert error.code is ErrorCode.BAD_FRAME
    assert (error.room, error.client_id) == ("lobby", "c-1")


def test_send_without_room_names_the_client_id() -> None:
    """A send whose room is missing is bad_frame echoing the client_id, so the client can match it."""
    error = refused(json.dumps({"type": "send", "text": "hi", "client_id": "c-9"}))
    assert error.code is ErrorCode.BAD_FRAME
    assert error.client_id == "c-9"


@pytest.mark.parametrize("name", [None, 7, ["alice"], True])
def test_non_string_name_is_bad_frame(name: object) -> None:
    """hello without a string name is bad_frame."""
    frame: dict[str, Any] = {"type": "hello"}
    if name is not None:
        frame["name"] = name
    assert refused(json.dumps(frame)).code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("since", ["1234", 12.0, 1.5, True, False, -2, -100, [1], {"o": 1}])
def test_bad_since_is_bad_frame_with_room(since: object) -> None:
    """since as a string, float, bool, or below -1 is bad_frame naming the room."""
    error = refused(json.dumps({"type": "join", "room": "lobby", "since": since}))
    assert error.code is ErrorCode.BAD_FRAME
    assert error.room == "lobby"


@pytest.mark.parametrize("client_id", [17, ["c"], {"c": 1}, True, "c" * (MAX_CLIENT_ID_CHARS + 1)])
def test_bad_client_id_is_bad_frame(client_id: object) -> None:
    """client_id that is not a string, or longer than 64 characters, is bad_frame."""
    error = refused(json.dumps({"type": "send", "room": "lobby", "text": "hi", "client_id": client_id}))
    assert error.code is ErrorCode.BAD_FRAME
    assert error.client_id is None  # an invalid id is not echoed


def test_client_id_of_64_characters_is_accepted() -> None:
    """The client_id limit is inclusive: 64 characters pass."""
    cid = "c" * MAX_CLIENT_ID_CHARS
    assert decode({"type": "send", "room": "r", "text": "hi", "client_id": cid}) == Send("r", "hi", cid)


# -- bad_room, bad_name ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["join", "leave", "send"])
@pytest.mark.parametrize("room", ["Lobby", "", "-x", "_x", "a b", "a" * 65])
def test_invalid_room_is_bad_room_naming_the_room(kind: str, room: str) -> None:
    """A string room that breaks the room id rules is bad_room, echoing the room."""
    error = refused(json.dumps({"type": kind, "room": room, "text": "hi"}))
    assert error.code is ErrorCode.BAD_ROOM
    assert error.room == room


def test_bad_room_in_send_echoes_the_client_id() -> None:
    """A send's error names its client_id, so the client can settle that send (one ack or one error).

    BUG: rooms/frames.py decode_client_frame calls validate_room_id() without the
    client_id it already parsed, so bad_room for a send has no client_id.
    """
    error = refused(json.dumps({"type": "send", "room": "Lobby", "text": "hi", "client_id": "c-5"}))
    assert error.code is ErrorCode.BAD_ROOM
    assert error.client_id == "c-5"


@pytest.mark.parametrize("name", ["", "   ", "a" * 33, "al\nice", "\x00"])
def test_bad_display_name_is_bad_name(name: str) -> None:
    """hello with an empty, too long or non-printable name is bad_name."""
    assert refused(json.dumps({"type": "hello", "name": name})).code is ErrorCode.BAD_NAME


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join", "room": "lob\ud800by"},
        {"type": "send", "room": "lobby", "text": "hi", "client_id": "c-\ud800"},
        {"type": "send", "room": "lobby", "text": "hi \ud800"},
    ],
)
def test_every_string_taken_from_a_frame_can_be_sent_back_as_utf8(frame: dict[str, Any]) -> None:
    """A lone surrogate (a JSON escape that is not Unicode text) never reaches a reply or Kafka.

    Either the frame is refused with an error frame that is valid UTF-8, or nothing in
    the decoded frame is a lone surrogate. BUG: a bad room is echoed as is (the error
    frame cannot be UTF-8 encoded: Daphne's send raises), a client_id is accepted and
    echoed in ack/error, and text is accepted and then crashes encode_record.
    """
    raw = json.dumps(frame)  # ensure_ascii: the surrogate travels as the escape \ud800
    try:
        decoded = decode_client_frame(raw)
    except ProtocolError as error:
        error_frame(error).encode("utf-8")
    else:
        for field in ("room", "text", "client_id", "name"):
            value = getattr(decoded, field, None)
            if value is not None:
                value.encode("utf-8")


# -- server frames --------------------------------------------------------------------------


def test_error_frame_includes_room_and_client_id_only_when_present() -> None:
    """error frames carry code and detail, and room/client_id only when the error has them."""
    bare = json.loads(error_frame(ProtocolError(ErrorCode.BAD_JSON, "nope")))
    assert bare == {"type": "error", "code": "bad_json", "detail": "nope"}
    full = json.loads(error_frame(ProtocolError(ErrorCode.TOO_LONG, "long", room="lobby", client_id="c-1")))
    assert full == {
        "type": "error",
        "code": "too_long",
        "detail": "long",
        "room": "lobby",
        "client_id": "c-1",
    }
    room_only = json.loads(error_frame(ProtocolError(ErrorCode.NOT_JOINED, "x", room="lobby")))
    assert "client_id" not in room_only and room_only["room"] == "lobby"


def test_encode_keeps_non_ascii_as_is_and_is_compact() -> None:
    """Server frames are compact JSON with non-ASCII characters written as themselves."""
    text = encode({"type": "message", "text": "zoë 🎉"})
    assert text == '{"type":"message","text":"zoë 🎉"}'
    assert "\\u" not in text


def test_bad_client_id_in_send_still_names_the_room() -> None:
    """An invalid client_id is bad_frame, and the error keeps the (valid) room it concerns."""
    with pytest.raises(ProtocolError) as refused:
        decode_client_frame('{"type": "send", "room": "lobby", "text": "hi", "client_id": 7}')
    assert (refused.value.code, refused.value.room, refused.value.client_id) == (
        ErrorCode.BAD_FRAME,
        "lobby",
        None,
    )
