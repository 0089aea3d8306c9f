"""`manage.py chattopic [--check] [--fix-config]`: create or validate the chat topic."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ephemchat.config import chat_config
from kafka_bridge.topics import TopicError, desired_topic_config, ensure_topic


class Command(BaseCommand):
    help = "Create the chat topic from the settings, or check that it matches them."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="never create or change; fail on any drift")
        mode.add_argument(
            "--fix-config", action="store_true", help="change topic settings that differ (never partitions)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = chat_config()
        try:
            status = ensure_topic(
                bootstrap=config.bootstrap_servers,
                topic=config.topic,
                partitions=config.partitions,
                replication_factor=config.replication_factor,
                ttl_ms=config.ttl_ms,
                create=not options["check"],
                fix_config=options["fix_config"],
            )
        except TopicError as exc:
            raise CommandError(str(exc)) from exc

        if status.created:
            retention = desired_topic_config(config.ttl_ms)["retention.ms"]
            self.stdout.write(
                f"created topic {config.topic} with {status.partitions} partitions, retention.ms={retention}"
            )
            return
        for line in status.fixed:
            self.stdout.write(f"fixed {line}")
        if not status.drift:
            self.stdout.write(f"topic {config.topic} is as configured ({status.partitions} partitions)")
            return
        drift = "\n".join(f"  {line}" for line in status.drift)
        message = f"topic {config.topic} differs from the settings:\n{drift}{_advice(status.drift)}"
        if options["check"]:
            raise CommandError(message)
        # Drift left after a create/fix run is reported, not fatal: the gateway reads the real
        # partition count from the topic's metadata and enforces the TTL itself.
        self.stdout.write(self.style.WARNING(message))


def _advice(drift: list[str]) -> str:
    tips = []
    if any(line.startswith("partitions:") for line in drift):
        tips.append("partitions are never changed (that would move rooms); fix CHAT_PARTITIONS instead")
    if any(not line.startswith(("partitions:", "replication factor:", "topic ")) for line in drift):
        tips.append("run `manage.py chattopic --fix-config` to apply the topic settings")
    return "".join(f"\n{tip}" for tip in tips)
