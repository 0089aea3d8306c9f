"""Kafka's default partitioner as a pure function (PROTOCOL.md section 3)."""

from __future__ import annotations

import pytest

from kafka_bridge.partitioner import key_partition, murmur2, room_partition

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS)
def test_murmur2_matches_kafkas_own_test_vectors(data: bytes, expected: int) -> None:
    """murmur2 returns exactly the signed 32-bit hash of Kafka's Java Utils.murmur2."""
    assert murmur2(data) == expected


def test_murmur2_covers_every_tail_length() -> None:
    """Keys of length 0-3 mod 4 all hash to a signed 32-bit int (every tail branch runs)."""
    for length in range(9):
        h = murmur2(b"x" * length)
        assert -(2**31) <= h < 2**31
    assert len({murmur2(b"x" * n) for n in range(9)}) == 9


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS)
def test_key_partition_is_the_positive_hash_modulo_partitions(data: bytes, expected: int) -> None:
    """The partition is (murmur2(key) & 0x7fffffff) % partitions, as in the Java client."""
    for partitions in (1, 7, 50):
        assert key_partition(data, partitions) == (expected & 0x7FFFFFFF) % partitions


def test_room_partition_is_in_range_and_deterministic() -> None:
    """Every room maps to one partition in [0, partitions), the same on every call."""
    rooms = [f"room-{i}" for i in range(500)]
    for partitions in (1, 3, 50):
        first = [room_partition(room, partitions) for room in rooms]
        assert all(0 <= p < partitions for p in first)
        assert first == [room_partition(room, partitions) for room in rooms]
    # 500 rooms over 50 partitions use many of them: the hash spreads rooms.
    assert len({room_partition(room, 50) for room in rooms}) > 40


def test_room_partition_with_one_partition_is_zero() -> None:
    """With a single partition every room is on partition 0."""
    assert {room_partition(room, 1) for room in ("a", "lobby", "z-9")} == {0}


@pytest.mark.parametrize("partitions", [0, -1, -50])
def test_key_partition_rejects_non_positive_partition_counts(partitions: int) -> None:
    """A partition count of zero or less is a ValueError, not a ZeroDivisionError or a number."""
    with pytest.raises(ValueError, match="partitions must be positive"):
        key_partition(b"lobby", partitions)
    with pytest.raises(ValueError):
        room_partition("lobby", partitions)


def test_room_partition_hashes_the_utf8_bytes_of_the_room() -> None:
    """A non-ASCII key is hashed as its UTF-8 bytes, like any Kafka producer keyed with that string."""
    key = "café-ünïcødé"
    assert room_partition(key, 50) == key_partition(key.encode("utf-8"), 50)
    assert murmur2(key.encode("utf-8")) != murmur2(key.encode("latin-1"))
