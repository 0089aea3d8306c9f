"""The Kafka record format (PROTOCOL.md section 3) as pure encode/decode functions."""

from __future__ import annotations

import json

import pytest

from kafka_bridge.records import (
    MAX_RECORD_BYTES,
    BadRecord,
    ChatMessage,
    ChatRecord,
    decode_record,
    encode_record,
    is_expired,
    message_from_record,
)

TEXT_LIMIT = 100_000  # above MAX_RECORD_BYTES: these tests are about the record format


def decode(key: bytes | None, value: bytes | None) -> ChatRecord:
    return decode_record(key, value, max_text_chars=TEXT_LIMIT)


def value(**fields: object) -> bytes:
    return json.dumps(fields).encode("utf-8")


@pytest.mark.parametrize(
    "record",
    [
        ChatRecord(room="lobby", user="alice", text="hi", client_id="c-17"),
        ChatRecord(room="lobby", user="alice", text="hi"),
        ChatRecord(room="café", user="zoë", text="ünïcødé ✓ 🎉", client_id="é"),
    ],
)
def test_encode_then_decode_gives_the_same_record(record: ChatRecord) -> None:
    """A record survives encode_record → decode_record unchanged, client_id included or absent."""
    key, raw = encode_record(record)
    assert decode(key, raw) == record


def test_encode_record_uses_the_room_as_key_and_the_protocol_json_value() -> None:
    """Key = room id in UTF-8; value = UTF-8 JSON with room, user, text and client_id only when set."""
    key, raw = encode_record(ChatRecord(room="lobby", user="alice", text="hé"))
    assert key == b"lobby"
    assert json.loads(raw.decode("utf-8")) == {"room": "lobby", "user": "alice", "text": "hé"}
    assert "hé".encode() in raw  # UTF-8, not \u escapes
    _, with_id = encode_record(ChatRecord(room="lobby", user="alice", text="hi", client_id="c-1"))
    assert json.loads(with_id)["client_id"] == "c-1"


def test_console_producer_record_decodes() -> None:
    """A record typed into Kafka's console producer (room as key, minimal JSON value) is a message."""
    record = decode(b"lobby", b'{"room":"lobby","user":"ops","text":"maintenance at 5"}')
    assert record == ChatRecord(room="lobby", user="ops", text="maintenance at 5")


@pytest.mark.parametrize("key", [None, b""])
def test_decode_rejects_a_record_without_key(key: bytes | None) -> None:
    """The key names the room; a record without one is bad."""
    with pytest.raises(BadRecord):
        decode(key, value(room="lobby", user="a", text="hi"))


def test_decode_rejects_a_missing_value() -> None:
    """A tombstone (None value) is not a message."""
    with pytest.raises(BadRecord):
        decode(b"lobby", None)


def test_decode_rejects_an_oversize_value_and_accepts_the_limit() -> None:
    """Values above MAX_RECORD_BYTES are refused before parsing; one of exactly the limit is parsed."""
    base = value(room="lobby", user="a", text="")
    filler = MAX_RECORD_BYTES - len(base)
    at_limit = value(room="lobby", user="a", text="x" * filler)
    assert len(at_limit) == MAX_RECORD_BYTES
    assert decode(b"lobby", at_limit).text == "x" * filler
    with pytest.raises(BadRecord, match="too large"):
        decode(b"lobby", value(room="lobby", user="a", text="x" * (filler + 1)))


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"user":"a","text":', b"\xff\xfe", b""],
)
def test_decode_rejects_a_value_that_is_not_json(raw: bytes) -> None:
    """Invalid JSON or invalid UTF-8 is BadRecord, never another exception."""
    with pytest.raises(BadRecord):
        decode(b"lobby", raw)


def test_decode_rejects_a_key_that_is_not_utf8() -> None:
    """A key that is not UTF-8 is BadRecord (not UnicodeDecodeError)."""
    with pytest.raises(BadRecord):
        decode(b"\xff\xfe", value(user="a", text="hi"))


@pytest.mark.parametrize("raw", [b"[]", b'["lobby","a","hi"]', b'"hi"', b"42", b"null"])
def test_decode_rejects_a_value_that_is_not_an_object(raw: bytes) -> None:
    """The value must be a JSON object."""
    with pytest.raises(BadRecord, match="not a JSON object"):
        decode(b"lobby", raw)


@pytest.mark.parametrize(
    "fields",
    [
        {"room": "lobby", "text": "hi"},
        {"room": "lobby", "user": "", "text": "hi"},
        {"room": "lobby", "user": 7, "text": "hi"},
        {"room": "lobby", "user": "a"},
        {"room": "lobby", "user": "a", "text": ""},
        {"room": "lobby", "user": "a", "text": ["hi"]},
    ],
)
def test_decode_rejects_a_missing_or_empty_user_or_text(fields: dict[str, object]) -> None:
    """user and text must be non-empty strings."""
    with pytest.raises(BadRecord, match="user or a text"):
        decode(b"lobby", value(**fields))


@pytest.mark.parametrize("room", ["other", "LOBBY", None, 1])
def test_decode_rejects_a_value_room_other_than_the_key(room: object) -> None:
    """A value naming another room than its key is refused: the key chose the partition."""
    with pytest.raises(BadRecord, match="another room"):
        decode(b"lobby", value(room=room, user="a", text="hi"))


def test_decode_tolerates_a_value_without_room() -> None:
    """Without "room" in the value, the key is authoritative."""
    assert decode(b"lobby", value(user="a", text="hi")).room == "lobby"


@pytest.mark.parametrize("client_id", [17, ["c"], {"id": 1}, True])
def test_decode_drops_a_client_id_that_is_not_a_string(client_id: object) -> None:
    """A foreign producer's non-string client_id does not make the record bad; it is dropped."""
    record = decode(b"lobby", value(user="a", text="hi", client_id=client_id))
    assert record == ChatRecord(room="lobby", user="a", text="hi", client_id=None)


def test_decode_ignores_unknown_fields() -> None:
    """Extra fields in the value are ignored (forward compatibility)."""
    record = decode(b"lobby", value(user="a", text="hi", colour="red", v=2))
    assert record == ChatRecord(room="lobby", user="a", text="hi")


@pytest.mark.parametrize("field", ["user", "text"])
def test_decode_rejects_text_that_cannot_be_sent_as_utf8(field: str) -> None:
    """A lone UTF-16 surrogate (valid JSON escape, not Unicode text) makes the record bad.

    BUG: decode_record accepts it; the live frame then cannot be written to a WebSocket
    (Daphne's serverSend does content.encode("utf8") → UnicodeEncodeError), which kills
    every consumer in the room instead of skipping one record.
    """
    fields = {"user": "a", "text": "hi", field: "bad \ud800 text"}
    raw = json.dumps(fields).encode("ascii")  # ASCII bytes: \ud800 is a JSON escape
    with pytest.raises(BadRecord):
        decode(b"lobby", raw)


def test_is_expired_at_the_boundary() -> None:
    """A message is expired once now reaches expires_at (expires_at == now is expired)."""
    assert not is_expired(1_000, 999)
    assert is_expired(1_000, 1_000)
    assert is_expired(1_000, 1_001)


def test_message_from_record_stamps_offset_ts_and_expiry() -> None:
    """message_from_record copies the record (client_id too) and sets expires_at = ts + TTL."""
    record = ChatRecord(room="lobby", user="alice", text="hi", client_id="c-1")
    message = message_from_record(record, offset=42, ts=1_764_780_000_000, ttl_ms=120_000)
    assert message == ChatMessage(
        room="lobby",
        offset=42,
        user="alice",
        text="hi",
        ts=1_764_780_000_000,
        expires_at=1_764_780_120_000,
        client_id="c-1",
    )


def test_to_wire_carries_the_senders_client_id_when_there_is_one() -> None:
    """The extension: M holds the sender's client_id when the send had one."""
    message = ChatMessage(room="lobby", offset=1, user="a", text="t", ts=10, expires_at=20, client_id="c-9")
    assert message.to_wire()["client_id"] == "c-9"


def test_to_wire_has_exactly_the_protocol_fields() -> None:
    """Message M without a client_id is exactly {room, offset, user, text, ts, expires_at}."""
    message = ChatMessage(room="lobby", offset=42, user="alice", text="hi", ts=10, expires_at=20)
    assert message.to_wire() == {
        "room": "lobby",
        "offset": 42,
        "user": "alice",
        "text": "hi",
        "ts": 10,
        "expires_at": 20,
    }


def test_decode_refuses_text_and_user_over_the_limits() -> None:
    """Any producer can write to the topic: text over max_text_chars, a user over 150
    characters or an over-long client_id never reach a client (the id is dropped)."""
    ok = json.dumps({"user": "u" * 150, "text": "t" * 10, "client_id": "c" * 64}).encode()
    assert decode_record(b"r", ok, max_text_chars=10).client_id == "c" * 64
    with pytest.raises(BadRecord):
        decode_record(b"r", json.dumps({"user": "u", "text": "t" * 11}).encode(), max_text_chars=10)
    with pytest.raises(BadRecord):
        decode_record(b"r", json.dumps({"user": "u" * 151, "text": "t"}).encode(), max_text_chars=10)
    long_id = json.dumps({"user": "u", "text": "t", "client_id": "c" * 65}).encode()
    assert decode_record(b"r", long_id, max_text_chars=10).client_id is None
