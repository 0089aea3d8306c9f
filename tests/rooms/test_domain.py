"""Chat rules as plain functions: room ids, names, text, rate limits."""

from __future__ import annotations

import re

import pytest

from rooms.domain import (
    MAX_NAME_CHARS,
    AbuseMeter,
    TokenBucket,
    guest_name,
    is_valid_room_id,
    normalize_name,
    validate_room_id,
    validate_text,
)
from rooms.errors import ErrorCode, ProtocolError


@pytest.mark.parametrize(
    "room", ["a", "0", "lobby", "room_1", "room-1", "9lives", "a" * 64, "a-_-_", "z" * 63 + "-"]
)
def test_valid_room_ids(room: str) -> None:
    """1-64 characters of a-z 0-9 _ -, starting with a letter or digit, are valid room ids."""
    assert is_valid_room_id(room)
    assert validate_room_id(room) == room


@pytest.mark.parametrize(
    "room",
    [
        "",
        "Lobby",
        "LOBBY",
        "lob by",
        " lobby",
        "lobby ",
        "a" * 65,
        "-lobby",
        "_lobby",
        "lobby\n",
        "café",
        "a.b",
        "a/b",
    ],
)
def test_invalid_room_ids_are_bad_room(room: str) -> None:
    """Uppercase, spaces, 65 characters, a leading '-' or '_', and other characters are bad_room."""
    assert not is_valid_room_id(room)
    with pytest.raises(ProtocolError) as caught:
        validate_room_id(room)
    assert caught.value.code is ErrorCode.BAD_ROOM
    assert caught.value.room == room  # the offending id is echoed so the client can tell which


@pytest.mark.parametrize("room", [None, 7, ["lobby"], b"lobby"])
def test_non_string_room_is_bad_room_without_echo(room: object) -> None:
    """A room that is not a string is refused and not echoed."""
    assert not is_valid_room_id(room)
    with pytest.raises(ProtocolError) as caught:
        validate_room_id(room)
    assert caught.value.code is ErrorCode.BAD_ROOM
    assert caught.value.room is None


def test_a_huge_invalid_room_is_not_echoed() -> None:
    """An oversize invalid room id is not echoed back in the error (no amplification)."""
    with pytest.raises(ProtocolError) as caught:
        validate_room_id("x" * 10_000)
    assert caught.value.room is None


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("alice", "alice"),
        ("  alice  ", "alice"),
        ("\talice bob\n", "alice bob"),
        ("zoë ✓", "zoë ✓"),
        ("a" * 32, "a" * 32),
    ],
)
def test_normalize_name_trims(raw: str, name: str) -> None:
    """A display name is trimmed; inner spaces and non-ASCII printable characters are kept."""
    assert normalize_name(raw) == name


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\n",
        "\t \n",
        "a" * (MAX_NAME_CHARS + 1),
        "  " + "b" * 33 + "  ",
        "al\nice",
        "al\x00ice",
        "\x00",
        "a\u200bb",
        "\x1b[31m",
    ],
)
def test_normalize_name_refuses_bad_names(raw: str) -> None:
    """Empty after trimming, longer than 32 characters, or not printable is bad_name."""
    with pytest.raises(ProtocolError) as caught:
        normalize_name(raw)
    assert caught.value.code is ErrorCode.BAD_NAME


def test_name_length_counts_after_trimming() -> None:
    """32 characters surrounded by spaces is a valid name: the limit applies to the trimmed name."""
    assert normalize_name("   " + "n" * 32 + "   ") == "n" * 32


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "\u3000"])
def test_blank_text_is_bad_text_with_room_and_client_id(text: str) -> None:
    """Text that is empty or only white space is bad_text, carrying the room and client_id."""
    with pytest.raises(ProtocolError) as caught:
        validate_text(text, max_chars=10, room="lobby", client_id="c-1")
    assert caught.value.code is ErrorCode.BAD_TEXT
    assert (caught.value.room, caught.value.client_id) == ("lobby", "c-1")


def test_text_longer_than_the_limit_is_too_long() -> None:
    """Above max_chars the text is too_long, carrying the room and client_id."""
    assert validate_text("x" * 10, max_chars=10, room="lobby", client_id=None) == "x" * 10
    with pytest.raises(ProtocolError) as caught:
        validate_text("x" * 11, max_chars=10, room="lobby", client_id="c-2")
    assert caught.value.code is ErrorCode.TOO_LONG
    assert (caught.value.room, caught.value.client_id) == ("lobby", "c-2")


def test_text_length_counts_code_points_not_bytes() -> None:
    """The limit counts Unicode code points: 10 emoji (40 UTF-8 bytes) fit a 10-character limit."""
    emoji = "🎉" * 10
    assert len(emoji.encode("utf-8")) == 40
    assert validate_text(emoji, max_chars=10, room="r", client_id=None) == emoji
    with pytest.raises(ProtocolError) as caught:
        validate_text(emoji + "é", max_chars=10, room="r", client_id=None)
    assert caught.value.code is ErrorCode.TOO_LONG


def test_text_is_returned_unchanged() -> None:
    """Valid text is not trimmed or altered."""
    assert validate_text("  hi  ", max_chars=10, room="r", client_id=None) == "  hi  "


def test_token_bucket_burst_then_refusal_then_refill() -> None:
    """A full bucket allows `burst` sends at once, then refuses until time refills it at `rate`."""
    bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
    assert [bucket.try_take(100.0) for _ in range(3)] == [True, True, True]
    assert not bucket.try_take(100.0)
    assert not bucket.try_take(100.4)  # 0.8 of a token
    assert bucket.try_take(100.5)  # 1.0 token after 0.5 s at 2/s
    assert not bucket.try_take(100.5)


def test_token_bucket_never_saves_more_than_burst() -> None:
    """A long idle period refills to `burst`, not beyond."""
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.try_take(0.0) and bucket.try_take(0.0)
    results = [bucket.try_take(1_000.0) for _ in range(3)]
    assert results == [True, True, False]


def test_abuse_meter_trips_above_the_limit() -> None:
    """record() is False up to `limit` refusals in a window and True for the one after."""
    meter = AbuseMeter(limit=3, window_s=10.0, now=0.0)
    assert [meter.record(1.0) for _ in range(3)] == [False, False, False]
    assert meter.record(2.0)


def test_abuse_meter_window_resets() -> None:
    """After the window has passed, counting starts again."""
    meter = AbuseMeter(limit=2, window_s=10.0, now=0.0)
    assert not meter.record(1.0)
    assert not meter.record(2.0)
    assert not meter.record(10.5)  # a new window starts: count 1
    assert not meter.record(11.0)
    assert meter.record(12.0)


def test_guest_name_format() -> None:
    """Guest names are guest-NNNN with four digits, and valid display names."""
    names = {guest_name() for _ in range(200)}
    assert all(re.fullmatch(r"guest-[1-9]\d{3}", n) for n in names)
    assert all(normalize_name(n) == n for n in names)
    assert len(names) > 1
