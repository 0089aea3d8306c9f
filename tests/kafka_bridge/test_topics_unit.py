"""Pure topic admin logic: the desired config and the drift sentences. No Kafka."""

from __future__ import annotations

import pytest

from kafka_bridge.topics import desired_topic_config, topic_drift


def test_desired_config_for_default_ttl() -> None:
    """The default 120 s TTL gives retention = TTL, 30 s segments and broker timestamps."""
    assert desired_topic_config(120_000) == {
        "cleanup.policy": "delete",
        "retention.ms": "120000",
        "segment.ms": "30000",
        "message.timestamp.type": "LogAppendTime",
        "file.delete.delay.ms": "1000",
    }


@pytest.mark.parametrize(
    ("ttl_ms", "segment_ms"),
    [
        (1, "1000"),  # floor: never one segment per message
        (2_000, "1000"),
        (20_000, "5000"),  # a quarter of a short TTL
        (120_000, "30000"),
        (3_600_000, "30000"),  # cap: disk overshoot stays about 30 s for long TTLs
    ],
)
def test_segment_ms_is_a_quarter_of_ttl_between_1_and_30_seconds(ttl_ms: int, segment_ms: str) -> None:
    """segment.ms bounds how long expired text can stay on disk after the TTL."""
    config = desired_topic_config(ttl_ms)
    assert config["segment.ms"] == segment_ms
    assert config["retention.ms"] == str(ttl_ms)


@pytest.mark.parametrize("ttl_ms", [0, -5])
def test_desired_config_rejects_a_non_positive_ttl(ttl_ms: int) -> None:
    """A TTL of zero or less is a configuration error, not a topic setting."""
    with pytest.raises(ValueError, match="ttl_ms must be positive"):
        desired_topic_config(ttl_ms)


def test_no_drift_when_the_topic_matches() -> None:
    """A topic equal to the settings (plus other broker defaults) has no drift."""
    want = desired_topic_config(120_000)
    have: dict[str, str | None] = {**want, "compression.type": "producer", "max.message.bytes": "1048588"}
    drift = topic_drift(want_partitions=50, want_config=want, have_partitions=50, have_config=have)
    assert drift == []


def test_partition_drift_names_the_setting() -> None:
    """A different partition count is one sentence naming CHAT_PARTITIONS."""
    want = desired_topic_config(120_000)
    drift = topic_drift(want_partitions=50, want_config=want, have_partitions=12, have_config=dict(want))
    assert drift == ["partitions: topic has 12, CHAT_PARTITIONS says 50"]


def test_config_drift_lists_each_difference() -> None:
    """Each differing or missing property gets its own sentence; retention names CHAT_MESSAGE_TTL."""
    want = desired_topic_config(120_000)
    have: dict[str, str | None] = {
        **want,
        "retention.ms": "604800000",
        "message.timestamp.type": "CreateTime",
    }
    del have["file.delete.delay.ms"]
    drift = topic_drift(want_partitions=50, want_config=want, have_partitions=50, have_config=have)
    assert drift == [
        "retention.ms: topic has 604800000, CHAT_MESSAGE_TTL says 120000",
        "message.timestamp.type: topic has CreateTime, ephemchat says LogAppendTime",
        "file.delete.delay.ms: topic has no value, ephemchat says 1000",
    ]


def test_replication_factor_drift_only_when_both_are_known() -> None:
    """Replication factor is compared only when the caller knows both values."""
    want = desired_topic_config(120_000)

    def drift(want_rf: int | None, have_rf: int | None) -> list[str]:
        return topic_drift(
            want_partitions=3,
            want_config=want,
            have_partitions=3,
            have_config=dict(want),
            want_replication_factor=want_rf,
            have_replication_factor=have_rf,
        )

    assert drift(3, 1) == ["replication factor: topic has 1, CHAT_REPLICATION_FACTOR says 3"]
    assert drift(3, None) == []
    assert drift(1, 1) == []
