"""The Kafka record format (PROTOCOL.md section 3), as pure encode/decode functions.

Key: the room id in UTF-8. Value: UTF-8 JSON {"room", "user", "text", "client_id"?}.
Timestamp: set by the broker (LogAppendTime). Any producer may write these records, so
decoding trusts nothing: a record that does not parse raises `BadRecord`, and the bridge
skips and counts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_RECORD_BYTES = 64 * 1024  # far above any valid chat text; bigger values are refused
# Any producer can write to the topic, so what a record may carry is bounded here: a history
# frame of CHAT_HISTORY_LIMIT messages must stay within what the gateway can send.
MAX_USER_CHARS = 150  # Django's username length: a signed-in user's name is their username
MAX_CLIENT_ID_CHARS = 64


class BadRecord(ValueError):
    """A record on the chat topic that is not a valid chat message."""


@dataclass(frozen=True, slots=True)
class ChatRecord:
    """The value of one record on the chat topic."""

    room: str
    user: str
    text: str
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A record as read back from Kafka: the message M of the protocol."""

    room: str
    offset: int
    user: str
    text: str
    ts: int
    expires_at: int
    client_id: str | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "room": self.room,
            "offset": self.offset,
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "expires_at": self.expires_at,
        }
        if self.client_id is not None:
            # The sender's correlation id (an extension of M): its page can tell its own
            # message from the echo even before the ack, and after a reconnect.
            wire["client_id"] = self.client_id
        return wire


def encode_record(record: ChatRecord) -> tuple[bytes, bytes]:
    """The (key, value) pair to produce for a chat record."""
    value: dict[str, str] = {"room": record.room, "user": record.user, "text": record.text}
    if record.client_id is not None:
        value["client_id"] = record.client_id
    return record.room.encode("utf-8"), json.dumps(value, ensure_ascii=False).encode("utf-8")


def decode_record(key: bytes | None, value: bytes | None, *, max_text_chars: int) -> ChatRecord:
    """Parse a record; the key is authoritative for the room (it chose the partition)."""
    if not key:
        raise BadRecord("record has no key")
    if value is None or len(value) > MAX_RECORD_BYTES:
        raise BadRecord("record value missing or too large")
    try:
        room = key.decode("utf-8")
        data = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRecord(f"record does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise BadRecord("record value is not a JSON object")
    user, text, client_id = data.get("user"), data.get("text"), data.get("client_id")
    if not isinstance(user, str) or not user or not isinstance(text, str) or not text:
        raise BadRecord("record lacks a user or a text")
    if len(user) > MAX_USER_CHARS or len(text) > max_text_chars:
        raise BadRecord("record user or text is longer than the limits")
    try:
        user.encode("utf-8")
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRecord("record user or text is not valid Unicode text") from None
    if data.get("room", room) != room:
        raise BadRecord("record value names another room than its key")
    if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID_CHARS:
        client_id = None
    return ChatRecord(room=room, user=user, text=text, client_id=client_id)


def message_from_record(record: ChatRecord, *, offset: int, ts: int, ttl_ms: int) -> ChatMessage:
    return ChatMessage(
        room=record.room,
        offset=offset,
        user=record.user,
        text=record.text,
        ts=ts,
        expires_at=ts + ttl_ms,
        client_id=record.client_id,
    )


def is_expired(expires_at: int, now_ms: int) -> bool:
    """Guarantee 3: a message whose expires_at has passed is never handed to a client."""
    return expires_at <= now_ms
