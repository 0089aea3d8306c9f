"""One typed, validated configuration object for chat and Kafka.

Built lazily from Django settings on first use (never at import time) and cached;
`reset_chat_config()` drops the cache for tests that change settings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True, slots=True)
class ChatConfig:
    bootstrap_servers: str
    topic: str
    partitions: int
    replication_factor: int
    ttl_ms: int
    history_limit: int
    max_text_chars: int
    max_rooms: int
    send_rate_per_s: float
    send_burst: int
    max_frame_bytes: int
    delivery_timeout_ms: int
    slow_client_bytes: int
    slow_client_close_s: float

    @property
    def limits(self) -> dict[str, object]:
        """The `limits` object of the welcome frame."""
        return {
            "max_text_chars": self.max_text_chars,
            "max_rooms": self.max_rooms,
            "max_frame_bytes": self.max_frame_bytes,
            "send_rate": {"per_second": self.send_rate_per_s, "burst": self.send_burst},
        }


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, got {value!r}")


@functools.cache
def chat_config() -> ChatConfig:
    ttl_seconds = float(settings.CHAT_MESSAGE_TTL)
    for name in (
        "CHAT_PARTITIONS",
        "CHAT_MESSAGE_TTL",
        "CHAT_HISTORY_LIMIT",
        "CHAT_REPLICATION_FACTOR",
        "CHAT_MAX_TEXT_CHARS",
        "CHAT_MAX_ROOMS",
        "CHAT_SEND_RATE",
        "CHAT_SEND_BURST",
        "CHAT_MAX_FRAME_BYTES",
        "CHAT_DELIVERY_TIMEOUT_MS",
        "CHAT_SLOW_CLIENT_BYTES",
        "CHAT_SLOW_CLIENT_CLOSE_S",
    ):
        _positive(name, float(getattr(settings, name)))
    if not settings.KAFKA_BOOTSTRAP_SERVERS.strip():
        raise ImproperlyConfigured("KAFKA_BOOTSTRAP_SERVERS is empty")
    if not settings.CHAT_TOPIC.strip():
        raise ImproperlyConfigured("CHAT_TOPIC is empty")
    return ChatConfig(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        topic=settings.CHAT_TOPIC,
        partitions=int(settings.CHAT_PARTITIONS),
        replication_factor=int(settings.CHAT_REPLICATION_FACTOR),
        ttl_ms=int(ttl_seconds * 1000),
        history_limit=int(settings.CHAT_HISTORY_LIMIT),
        max_text_chars=int(settings.CHAT_MAX_TEXT_CHARS),
        max_rooms=int(settings.CHAT_MAX_ROOMS),
        send_rate_per_s=float(settings.CHAT_SEND_RATE),
        send_burst=int(settings.CHAT_SEND_BURST),
        max_frame_bytes=int(settings.CHAT_MAX_FRAME_BYTES),
        delivery_timeout_ms=int(settings.CHAT_DELIVERY_TIMEOUT_MS),
        slow_client_bytes=int(settings.CHAT_SLOW_CLIENT_BYTES),
        slow_client_close_s=float(settings.CHAT_SLOW_CLIENT_CLOSE_S),
    )


def reset_chat_config() -> None:
    chat_config.cache_clear()
