"""Chat rules as plain functions and small classes: room ids, names, text, rate limits.

No Django, no Kafka, no I/O: everything here has plain unit tests.
"""

from __future__ import annotations

import re
import secrets

from rooms.errors import ErrorCode, ProtocolError

ROOM_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_NAME_CHARS = 32
MAX_CLIENT_ID_CHARS = 64  # echoed back verbatim, so it is kept short


def is_utf8(value: str) -> bool:
    """JSON can carry lone surrogates ("\\ud800"), which are not text and cannot be sent on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_valid_room_id(room: object) -> bool:
    return isinstance(room, str) and ROOM_ID_PATTERN.fullmatch(room) is not None


def validate_room_id(room: object) -> str:
    if not is_valid_room_id(room):
        raise ProtocolError(
            ErrorCode.BAD_ROOM,
            "room ids are 1-64 characters of a-z 0-9 _ -, starting with a letter or digit",
            room=room if isinstance(room, str) and len(room) <= 200 and is_utf8(room) else None,
        )
    assert isinstance(room, str)
    return room


def normalize_name(raw: str) -> str:
    """A display name: trimmed, 1-32 printable characters."""
    name = raw.strip()
    if not name:
        raise ProtocolError(ErrorCode.BAD_NAME, "the name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise ProtocolError(ErrorCode.BAD_NAME, f"the name is longer than {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        raise ProtocolError(ErrorCode.BAD_NAME, "the name has characters that are not printable")
    return name


def validate_text(text: str, *, max_chars: int, room: str, client_id: str | None) -> str:
    """Chat text: not blank, at most max_chars characters (Unicode code points)."""
    if not text.strip():
        raise ProtocolError(ErrorCode.BAD_TEXT, "the text is empty", room=room, client_id=client_id)
    if len(text) > max_chars:
        raise ProtocolError(
            ErrorCode.TOO_LONG,
            f"the text is {len(text)} characters; the limit is {max_chars}",
            room=room,
            client_id=client_id,
        )
    return text


def guest_name() -> str:
    return f"guest-{secrets.randbelow(9000) + 1000}"


class TokenBucket:
    """Send rate limit: `rate` tokens a second, at most `burst` saved up."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def try_take(self, now: float) -> bool:
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class AbuseMeter:
    """Counts refused frames in fixed windows of window_s; too many means the connection is abusive.

    A client that keeps sending frames we refuse (bad frames, rate-limited sends) is
    closed with 1008 rather than served errors forever.
    """

    __slots__ = ("_count", "_window_start", "limit", "window_s")

    def __init__(self, *, limit: int, window_s: float, now: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._count = 0
        self._window_start = now

    def record(self, now: float) -> bool:
        """Record one refused frame; True when the connection is over the limit."""
        if now - self._window_start > self.window_s:
            self._window_start = now
            self._count = 0
        self._count += 1
        return self._count > self.limit
