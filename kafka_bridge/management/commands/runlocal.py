"""`python manage.py runlocal`: the whole app on one machine (what `scripts/run` starts).

Starts the project's local Kafka broker, unless KAFKA_BOOTSTRAP_SERVERS is set in the
environment (then that broker is used), and one gateway node in front of it. Ctrl-C
drains the gateway and stops the broker it started.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ephemchat.config import reset_chat_config
from kafka_bridge.local_broker import LocalBroker, LocalBrokerError


class Command(BaseCommand):
    help = (
        "Run ephemchat locally: a local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS is set) and one gateway."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--kafka-port", type=int, default=9092, help="port of the local broker")

    def handle(self, *args: Any, **options: Any) -> None:
        broker: LocalBroker | None = None
        if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
            self.stdout.write(
                f"using the Kafka at KAFKA_BOOTSTRAP_SERVERS={os.environ['KAFKA_BOOTSTRAP_SERVERS']}"
            )
        else:
            local = LocalBroker(port=options["kafka_port"], out=self.stdout)
            try:
                if local.is_running():
                    self.stdout.write(f"reusing the local Kafka already running on {local.bootstrap}")
                else:
                    local.start(timeout=120)
                    broker = local
            except LocalBrokerError as exc:
                raise CommandError(str(exc)) from exc
            settings.KAFKA_BOOTSTRAP_SERVERS = local.bootstrap
            reset_chat_config()
        try:
            call_command("runkafkabridge", host=options["host"], port=options["port"])
        finally:
            if broker is not None:
                self.stdout.write("stopping the local Kafka broker")
                broker.stop()
